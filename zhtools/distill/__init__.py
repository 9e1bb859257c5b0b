"""Classifier fine-tuning and BERT-of-Theseus compression (progressive module replacement)."""

from zhtools.distill.classify import Classifier, FinetuneConfig, finetune, read_tsv
from zhtools.distill.theseus import DistillConfig, Schedule, Theseus, distill, export_successor

__all__ = ["Classifier", "DistillConfig", "FinetuneConfig", "Schedule", "Theseus", "distill",
           "export_successor", "finetune", "read_tsv"]
