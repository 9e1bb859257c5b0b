"""Impact engine: equals the paper-schedule oracle; adjacent mode = full-matrix entries."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import oracle_matrix, tiny_encoder

from zhtools.probe import ImpactEngine, Units

TEXTS = ["北京是中国的首都", "今天天气很好，我们去公园散步吧", "中华人民共和国成立于1949年"]


@pytest.fixture(scope="module", params=["bert", "roberta"])
def enc(request, tmp_path_factory):
    return tiny_encoder(request.param, tmp_path_factory.mktemp(request.param))


def test_full_matrix_equals_oracle(enc) -> None:
    eng = ImpactEngine(enc, budget=300)
    units = [eng.char_units(t) for t in TEXTS]
    for u, r in zip(units, eng.full(units)):
        o = oracle_matrix(enc, u)
        assert np.abs(o).max() > 0
        assert np.abs(r.matrix - o).max() / np.abs(o).max() <= 1e-4
        assert np.all(np.diag(r.matrix) == 0)
        assert r.uncovered == 0


def _fast_equals_plain(enc, layers) -> None:
    text = "北京是中国的首都。" * 30  # longer than the tiny encoder's window
    for layer in layers:
        fast = ImpactEngine(enc, layer=layer, budget=400)
        plain = ImpactEngine(enc, layer=layer, budget=400)
        plain._layers = None
        assert fast._layers is not None
        items = [Units.from_words(["北京", "是", "中国", "的", "首都"]), "今天天气很好", text]
        for a, b in zip(fast.full(items[:2]), plain.full(items[:2])):
            assert np.abs(a.matrix - b.matrix).max() <= 1e-4 * np.abs(b.matrix).max()
        for a, b in zip(fast.adjacent(items), plain.adjacent(items)):  # tiny impacts here: fp32
            assert a.shape == b.shape and np.abs(a - b).max() <= 1e-3 * np.abs(b).max()  # cancellation


def test_factorised_forward_equals_plain(enc) -> None:
    """BERT and RoBERTa take the factorised path (embeddings and layer-1 projections once per
    window and token variant, the read layer at the read positions only, its key/value
    projections folded into the queries); it gives the plain forward's impacts for word units,
    padded batches and windowed long text."""
    _fast_equals_plain(enc, (1, -1))


def test_factorised_forward_deeper_and_electra(tmp_path) -> None:
    """Layers between the first and the read one run in full (a 4-layer BERT read at layers 2, 3
    and 4); ELECTRA's embedding projection (embedding size != hidden size) is applied."""
    import torch
    from helpers import tiny_tokenizer
    from transformers import ElectraConfig, ElectraModel

    from zhtools.models import load_encoder, save_model

    _fast_equals_plain(tiny_encoder("bert", tmp_path, layers=4), (2, 3, -1))
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    m = ElectraModel(ElectraConfig(vocab_size=tok.vocab_size, embedding_size=16, hidden_size=32,
                                   num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                   max_position_embeddings=64, pad_token_id=tok.pad_id))
    save_model(m, tok, tmp_path / "electra")
    enc = load_encoder(tmp_path / "electra")
    assert enc.model.embeddings_project is not None
    _fast_equals_plain(enc, (1, -1))
    u = Units.from_words(["北京", "是", "中国", "的", "首都"])
    o = oracle_matrix(enc, u)
    assert np.abs(ImpactEngine(enc).full([u])[0].matrix - o).max() / np.abs(o).max() <= 1e-4


def test_word_units_and_layer(enc) -> None:
    u = Units.from_words(["北京", "是", "中国", "的", "首都"])
    eng = ImpactEngine(enc, layer=1)
    r = eng.full([u])[0].matrix
    o = oracle_matrix(enc, u, layer=1)
    assert r.shape == (5, 5)
    assert np.abs(r - o).max() / np.abs(o).max() <= 1e-4
    # layer 1 of a deeper encoder runs a truncated view; the shared model keeps all its layers
    n = enc.model.config.num_hidden_layers
    assert n >= 2 and eng._model is not enc.model
    assert len(eng._model.encoder.layer) == 1 and len(enc.model.encoder.layer) == n
    mid = ImpactEngine(enc, layer="middle")
    assert mid.layer == max(1, n // 2)
    om = oracle_matrix(enc, u, layer=mid.layer)
    assert np.abs(mid.full([u])[0].matrix - om).max() / np.abs(om).max() <= 1e-4
    assert ImpactEngine(enc, layer=n).layer == ImpactEngine(enc, layer="last").layer == -1
    with pytest.raises(ValueError):
        ImpactEngine(enc, layer=n + 1)
    with pytest.raises(ValueError):
        ImpactEngine(enc, layer="first")


def test_auto_layer_reads_the_models_own_probe_layer(enc, tmp_path) -> None:
    """``layer="auto"``: the layer named in the model's config.json (set by ``ship --probe-layer``),
    else the middle layer; an out-of-range stored value falls back to the middle layer too."""
    from zhtools.models import load_encoder
    from zhtools.probe.engine import PROBE_LAYER_KEY, resolve_layer
    from zhtools.train.ship import set_probe_layer

    n = enc.model.config.num_hidden_layers
    assert ImpactEngine(enc, layer="auto").layer == max(1, n // 2)  # no stored layer
    d = tmp_path / "m"
    enc.model.save_pretrained(str(d), safe_serialization=True)
    enc.tokenizer.save_pretrained(d)
    set_probe_layer(d, 1)
    own = load_encoder(str(d))
    assert getattr(own.model.config, PROBE_LAYER_KEY) == 1
    eng = ImpactEngine(own, layer="auto")
    assert eng.layer == 1 and len(eng._model.encoder.layer) == 1
    u = Units.from_words(["北京", "是", "中国", "的", "首都"])
    o = oracle_matrix(enc, u, layer=1)  # same weights, layer 1 read explicitly
    assert np.abs(eng.full([u])[0].matrix - o).max() / np.abs(o).max() <= 1e-4
    assert resolve_layer(own.model, "middle") == max(1, n // 2)  # explicit choices still win
    assert resolve_layer(own.model.config, 0) == 0
    own.model.config.zhtools_probe_layer = n + 3  # a stale value never crashes: middle
    assert resolve_layer(own.model, "auto") == max(1, n // 2)
    with pytest.raises(ValueError):
        set_probe_layer(d, n + 1)
    set_probe_layer(d, None)
    assert PROBE_LAYER_KEY not in (d / "config.json").read_text()


def test_adjacent_matches_full(enc) -> None:
    eng = ImpactEngine(enc)
    units = [eng.char_units(t) for t in TEXTS]
    for a, r in zip(eng.adjacent(units), eng.full(units)):
        n = r.matrix.shape[0]
        i = np.arange(n - 1)
        assert np.allclose(a[:, 0], r.matrix[i + 1, i], rtol=1e-5, atol=1e-6)
        assert np.allclose(a[:, 1], r.matrix[i, i + 1], rtol=1e-5, atol=1e-6)


def test_band_matches_full(enc) -> None:
    """``band(width)``: the full matrix's entries for pairs at most ``width`` apart, 0 elsewhere;
    width 1 is the adjacent mode, a width >= n - 1 the full matrix."""
    eng = ImpactEngine(enc)
    units = [eng.char_units(t) for t in TEXTS]
    full = eng.full(units)
    for width in (1, 2, 3):
        for b, r in zip(eng.band(units, width), full):
            n = r.matrix.shape[0]
            near = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= width
            assert np.allclose(b.matrix[near], r.matrix[near], rtol=1e-5, atol=1e-6)
            assert np.all(b.matrix[~near] == 0)
    for b, r in zip(eng.band(units, 100), full):
        assert np.allclose(b.matrix, r.matrix, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError):
        eng.band(units, 0)


def test_cosine_metric_and_budget_independence(enc) -> None:
    units = [Units(t, []) for t in []] + [ImpactEngine(enc).char_units(t) for t in TEXTS]
    a = ImpactEngine(enc, metric="cosine", budget=64).full(units)
    b = ImpactEngine(enc, metric="cosine", budget=4096).full(units)
    for x, y in zip(a, b):
        assert np.allclose(x.matrix, y.matrix, atol=1e-5)
        assert x.matrix.max() <= 2.0


def test_long_text_windows(enc) -> None:
    text = "北京是中国的首都" * 20  # 160 tokens > 62-token window
    eng = ImpactEngine(enc)
    u = eng.char_units(text)
    adj = eng.adjacent([u])[0]
    assert adj.shape == (159, 2) and np.all(adj > 0)
    full = eng.full([u])[0]
    assert full.matrix.shape == (160, 160) and full.uncovered > 0
    # pairs owned by the first window equal impacts computed on that window's text alone
    first = eng.adjacent([eng.char_units(text[:62])])[0]
    assert np.allclose(adj[:20], first[:20], rtol=1e-5, atol=1e-7)


def test_empty_inputs(enc) -> None:
    eng = ImpactEngine(enc)
    res = eng.full(["", "中"])
    assert res[0].matrix.shape == (0, 0) and res[1].matrix.shape == (1, 1)
    assert eng.adjacent([""])[0].shape == (0, 2)


def test_bf16_autocast_is_close_to_fp32(enc) -> None:
    from zhtools.models.loader import cpu_has_native_bf16
    from zhtools.segment import Segmenter

    texts = ["北京是中国的首都，也是一座历史悠久的城市！", "今天天气很好，我们去公园散步吧？"]
    exact = ImpactEngine(enc).full(texts)
    fast = ImpactEngine(enc, bf16=True).full(texts)
    for a, b in zip(exact, fast):
        rel = np.abs(a.matrix - b.matrix).max() / np.abs(a.matrix).max()
        assert 0 < rel < 0.05  # autocast really ran, and stayed close
    assert Segmenter(None).bf16 is False  # exact fp32 unless asked
    assert ImpactEngine(enc, bf16=True).bf16 == (enc.device.type == "cpu")
    assert isinstance(cpu_has_native_bf16(), bool)


@pytest.mark.parametrize("kind", ["albert", "distilbert"])
def test_other_architectures_equal_oracle(kind: str, tmp_path) -> None:
    """Encoders without BERT's ``encoder.layer`` (ALBERT's shared layer groups, DistilBERT's
    ``transformer``) take the plain forward and still equal the paper-schedule oracle, at the
    last and at an inner layer."""
    import torch
    from helpers import tiny_tokenizer
    from transformers import AlbertConfig, AlbertModel, DistilBertConfig, DistilBertModel

    from zhtools.models import load_encoder, save_model

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    if kind == "albert":
        m = AlbertModel(AlbertConfig(vocab_size=tok.vocab_size, embedding_size=16, hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=64, pad_token_id=tok.pad_id))
    else:
        m = DistilBertModel(DistilBertConfig(vocab_size=tok.vocab_size, dim=32, n_layers=2, n_heads=2,
                                             hidden_dim=64, max_position_embeddings=64, pad_token_id=tok.pad_id))
    save_model(m, tok, tmp_path / kind)
    enc = load_encoder(tmp_path / kind)
    u = Units.from_words(["北京", "是", "中国", "的", "首都"])
    for layer in (-1, 1):
        eng = ImpactEngine(enc, layer=layer)
        assert eng._layers is None  # plain forward
        o = oracle_matrix(enc, u, layer=layer)
        r = eng.full([u, "今天天气很好"])
        assert np.abs(o).max() > 0
        assert np.abs(r[0].matrix - o).max() / np.abs(o).max() <= 1e-4
        assert r[1].matrix.shape == (6, 6)
