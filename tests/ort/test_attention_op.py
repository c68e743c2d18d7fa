"""libedgebit_ort.so's edgebit.Attention (the ONNX artifact's attention over its KV cache) in a real
onnxruntime.InferenceSession: the same outputs and caches as ONNX Runtime's own com.microsoft GroupQueryAttention
(an independent implementation) within float rounding, with a past of its own (present a new tensor) and with one
buffer bound as both past and present (written in place, step after step, as genai's shared buffer and edgebit's
engine run it); left-padded batch rows held to torch's scaled_dot_product_attention over their real keys; head sizes
GroupQueryAttention does not take; an fp16 cache (rows rounded as numpy rounds, outputs the fp32 op's on the widened
cache bit for bit); bad inputs and attributes are errors naming them."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from edgebit.ops import ort_library

FLOAT, INT64, INT32 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32


def io_infos(hq, hkv, d, kind=FLOAT, cache=None, value_cache=None):
    """Symbolic dims only: the op itself must check every shape (ONNX Runtime would refuse fixed ones first).
    cache / value_cache: the element types of past/present key and value (default: kind)."""
    cache = kind if cache is None else cache
    value_cache = cache if value_cache is None else value_cache
    ins = [helper.make_tensor_value_info("query", kind, ["B", "T", "QW"]),
           helper.make_tensor_value_info("key", kind, ["B", "T", "KW"]),
           helper.make_tensor_value_info("value", kind, ["B", "T", "VW"]),
           helper.make_tensor_value_info("past_key", cache, ["B", "H", "L", "D"]),
           helper.make_tensor_value_info("past_value", value_cache, ["B", "H2", "L2", "D2"])]
    outs = [helper.make_tensor_value_info("out", FLOAT, None),
            helper.make_tensor_value_info("present_key", cache, None),
            helper.make_tensor_value_info("present_value", value_cache, None)]
    return ins, outs


def edgebit_model(hq, hkv, d, attrs=None, kind=FLOAT, cache=None, value_cache=None) -> bytes:
    ins, outs = io_infos(hq, hkv, d, kind, cache, value_cache)
    ins += [helper.make_tensor_value_info("total_len", INT64, [1]),
            helper.make_tensor_value_info("key_start", INT64, ["B"])]
    attrs = {"num_heads": hq, "kv_num_heads": hkv, "scale": d ** -0.5} if attrs is None else attrs
    node = helper.make_node("Attention", [i.name for i in ins], [o.name for o in outs], domain="edgebit", **attrs)
    graph = helper.make_graph([node], "attention", ins, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("edgebit", 1)],
                             ir_version=10).SerializeToString()


def gqa_model(hq, hkv, d) -> bytes:
    ins, outs = io_infos(hq, hkv, d)
    ins += [helper.make_tensor_value_info("seqlens_k", INT32, ["B"]),
            helper.make_tensor_value_info("total_sequence_length", INT32, [1])]
    node = helper.make_node("GroupQueryAttention", [i.name for i in ins], [o.name for o in outs],
                            domain="com.microsoft", num_heads=hq, kv_num_heads=hkv, scale=d ** -0.5)
    graph = helper.make_graph([node], "gqa", ins, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=10).SerializeToString()


def session(model: bytes, threads: int = 1) -> ort.InferenceSession:
    return ort.InferenceSession(model, ort_library.session_options(threads), providers=["CPUExecutionProvider"])


def step_inputs(b, t, hq, hkv, d, seed):
    g = np.random.default_rng(seed)
    return {"query": g.standard_normal((b, t, hq * d), np.float32),
            "key": g.standard_normal((b, t, hkv * d), np.float32),
            "value": g.standard_normal((b, t, hkv * d), np.float32)}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("hq,hkv,d", [(8, 2, 32), (4, 4, 16), (20, 5, 128)])
def test_new_present_matches_group_query_attention(hq, hkv, d, threads):
    """A prompt, then steps, each with past = the previous present (the Concat-style interface): outputs and caches
    as GroupQueryAttention's."""
    ours, theirs = session(edgebit_model(hq, hkv, d), threads), session(gqa_model(hq, hkv, d), threads)
    past = np.zeros((1, hkv, 0, d), np.float32)
    ours_past = theirs_past = (past, past)
    total = 0
    for step, t in enumerate([300, 1, 1, 5]):  # the prompt crosses the kernel's 256-key chunks
        feeds = step_inputs(1, t, hq, hkv, d, seed=step)
        total += t
        mine = ours.run(None, {**feeds, "past_key": ours_past[0], "past_value": ours_past[1],
                               "total_len": np.array([total]), "key_start": np.array([0])})
        ref = theirs.run(None, {**feeds, "past_key": theirs_past[0], "past_value": theirs_past[1],
                                "seqlens_k": np.array([total - 1], np.int32),
                                "total_sequence_length": np.array([total], np.int32)})
        assert mine[1].shape == ref[1].shape == (1, hkv, total, d)
        assert np.array_equal(mine[1], ref[1]) and np.array_equal(mine[2], ref[2])  # copies, bit for bit
        np.testing.assert_allclose(mine[0], ref[0], rtol=1e-4, atol=2e-5)
        ours_past, theirs_past = (mine[1], mine[2]), (ref[1], ref[2])


def run_shared(s: ort.InferenceSession, feeds: dict, total: int, caches: list) -> np.ndarray:
    """One step with the cache OrtValues bound as both past and present (in place); the attention output."""
    io = s.io_binding()
    io.bind_output("out")
    for name, value in {**feeds, "total_len": np.array([total]), "key_start": np.array([0])}.items():
        io.bind_cpu_input(name, value)
    for name, ov in zip(("key", "value"), caches):
        io.bind_ortvalue_input(f"past_{name}", ov)
        io.bind_ortvalue_output(f"present_{name}", ov)
    s.run_with_iobinding(io)
    return io.get_outputs()[0].numpy()


def test_shared_buffer_is_written_in_place():
    """One max_len buffer bound as past and present: only the new rows change, and the outputs equal the run with a
    present of its own."""
    hq, hkv, d, max_len = 8, 2, 32, 600
    s = session(edgebit_model(hq, hkv, d), 2)
    buffers = [np.full((1, hkv, max_len, d), 7.0, np.float32) for _ in range(2)]  # stale rows: never read
    values = [ort.OrtValue.ortvalue_from_numpy(b) for b in buffers]
    past = (np.zeros((1, hkv, 0, d), np.float32),) * 2
    total = 0
    for step, t in enumerate([270, 1, 1, 3]):
        feeds = step_inputs(1, t, hq, hkv, d, seed=10 + step)
        total += t
        shared_out = run_shared(s, feeds, total, values)
        fresh = s.run(None, {**feeds, "past_key": past[0], "past_value": past[1], "total_len": np.array([total]),
                             "key_start": np.array([0])})
        np.testing.assert_array_equal(shared_out, fresh[0])
        for buf, ov, present in zip(buffers, values, fresh[1:]):
            cache = ov.numpy()
            assert np.array_equal(cache[:, :, :total], present) and (cache[:, :, total:] == 7.0).all()
        past = (fresh[1], fresh[2])


# Float16 rounding cases for the cache's rows: ties to even either way, a subnormal, the largest half and just past
# it (rounds down to it), a value that overflows the subnormal range into the normal one.
ROUNDING_CASES = np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 6e-8, 65504.0, 65519.99, 6.1032e-05,
                           2049.0, 2051.0, 1e-9, -0.0], np.float32)


@pytest.mark.parametrize("threads", [1, 2])
def test_fp16_cache_rows_round_as_numpy_and_outputs_equal_the_fp32_op_on_them(threads):
    """An fp16 cache bound as past and present (in place, as the artifact runs it): each step's new rows are numpy's
    float16 of the fp32 keys and values, bit for bit, and the output is the fp32 op's, bit for bit, given the same
    cache widened (fp16 -> fp32 is exact), through a prompt that crosses the 256-key chunks and decode steps."""
    hq, hkv, d, max_len = 20, 5, 128, 400
    half = session(edgebit_model(hq, hkv, d, cache=TensorProto.FLOAT16), threads)
    full = session(edgebit_model(hq, hkv, d), threads)
    caches = [ort.OrtValue.ortvalue_from_numpy(np.zeros((1, hkv, max_len, d), np.float16)) for _ in range(2)]
    past32 = (np.zeros((1, hkv, 0, d), np.float32),) * 2
    total = 0
    for step, t in enumerate([300, 1, 1, 4]):
        feeds = step_inputs(1, t, hq, hkv, d, seed=30 + step)
        feeds["key"].reshape(-1)[:ROUNDING_CASES.size] = ROUNDING_CASES
        feeds["value"].reshape(-1)[-ROUNDING_CASES.size:] = ROUNDING_CASES
        total += t
        out16 = run_shared(half, feeds, total, caches)
        for name, ov in zip(("key", "value"), caches):
            rows = ov.numpy()[:, :, total - t:total]  # [1, hkv, t, d]
            want = feeds[name].reshape(1, t, hkv, d).transpose(0, 2, 1, 3).astype(np.float16)
            assert np.array_equal(rows.view(np.uint16), want.view(np.uint16)), (step, name)
        widened = {n: feeds[n].astype(np.float16).astype(np.float32) for n in ("key", "value")}
        out32, pk, pv = full.run(None, {**feeds, **widened, "past_key": past32[0], "past_value": past32[1],
                                        "total_len": np.array([total]), "key_start": np.array([0])})
        assert np.array_equal(out16, out32), step
        past32 = (pk, pv)


def sdpa_rows(q, k, v, positions, start, hq, hkv, d):
    """torch's scaled_dot_product_attention per query over keys start..position (zeros before start)."""
    rows = []
    for i, p in enumerate(positions):
        if p < start:
            rows.append(torch.zeros(hq * d))
            continue
        kk = torch.from_numpy(k[:, start:p + 1]).repeat_interleave(hq // hkv, dim=0)
        vv = torch.from_numpy(v[:, start:p + 1]).repeat_interleave(hq // hkv, dim=0)
        qq = torch.from_numpy(q[i].reshape(hq, 1, d))
        rows.append(F.scaled_dot_product_attention(qq, kk, vv, scale=d ** -0.5).reshape(-1))
    return torch.stack(rows).numpy()


@pytest.mark.parametrize("d", [16, 13])  # 13: a head size GroupQueryAttention does not take
def test_left_padded_batch_rows_see_only_their_keys(d):
    hq, hkv, t = 4, 2, 6
    s = session(edgebit_model(hq, hkv, d))
    feeds = step_inputs(2, t, hq, hkv, d, seed=20)
    past = np.zeros((2, hkv, 0, d), np.float32)
    out, pk, pv = s.run(None, {**feeds, "past_key": past, "past_value": past, "total_len": np.array([t]),
                               "key_start": np.array([0, 2])})
    for b, start in ((0, 0), (1, 2)):
        want = sdpa_rows(feeds["query"][b], pk[b], pv[b], range(t), start, hq, hkv, d)
        np.testing.assert_allclose(out[b], want, rtol=1e-4, atol=2e-5)
    assert (out[1, :2] == 0).all()  # the padding queries: zeros, never NaN


def run_bad(model, feeds_change=None, kind=np.float32):
    hq, hkv, d = 4, 2, 8
    s = session(model)
    feeds = {k: v.astype(kind) for k, v in step_inputs(1, 2, hq, hkv, d, seed=1).items()}
    past = np.zeros((1, hkv, 3, d), kind)
    feeds.update({"past_key": past, "past_value": past, "total_len": np.array([5]), "key_start": np.array([0])})
    feeds.update(feeds_change or {})
    s.run(None, feeds)


@pytest.mark.parametrize("change,message", [
    ({"total_len": np.array([9])}, r"total_len = 9 must be in \[T, L \+ T\] = \[2, 5\]"),
    ({"total_len": np.array([1])}, r"total_len = 1 must be in \[T, L \+ T\]"),
    ({"key_start": np.array([5])}, r"key_start\[0\] = 5 must be in \[0, total_len = 5\)"),
    ({"key_start": np.array([0, 0])}, r"input 6 'key_start' must be \[B\] = \[1\]"),
    ({"past_value": np.zeros((1, 2, 4, 8), np.float32)}, r"input 4 'past_value' must be \[B, kv_num_heads, L, D\]"),
    ({"key": np.zeros((1, 2, 15), np.float32)}, r"input 1 'key' must be \[1, 2, 16\]"),
])
def test_bad_inputs_name_the_input(change, message):
    with pytest.raises(Exception, match=r"edgebit\.Attention: " + message):
        run_bad(edgebit_model(4, 2, 8), change)


def test_bad_attributes_and_types():
    with pytest.raises(Exception, match=r"edgebit\.Attention: attribute 'scale' is missing"):
        run_bad(edgebit_model(4, 2, 8, {"num_heads": 4, "kv_num_heads": 2}))
    with pytest.raises(Exception, match=r"edgebit\.Attention: attributes num_heads=4 and kv_num_heads=3"):
        run_bad(edgebit_model(4, 2, 8, {"num_heads": 4, "kv_num_heads": 3, "scale": 0.5}))
    with pytest.raises(Exception, match=r"edgebit\.Attention: input 0 'query' must be float32, got float16"):
        run_bad(edgebit_model(4, 2, 8, kind=TensorProto.FLOAT16), kind=np.float16)
    mixed = edgebit_model(4, 2, 8, cache=TensorProto.FLOAT, value_cache=TensorProto.FLOAT16)
    with pytest.raises(Exception, match=r"edgebit\.Attention: input 4 'past_value' must be float32 as input 3 "
                                        r"'past_key' is, got float16"):
        run_bad(mixed, {"past_value": np.zeros((1, 2, 3, 8), np.float16)})
    with pytest.raises(Exception, match=r"edgebit\.Attention: input 3 'past_key' must be float32, float16 or int8, got "
                                        r"float64"):
        run_bad(edgebit_model(4, 2, 8, cache=TensorProto.DOUBLE),
                {"past_key": np.zeros((1, 2, 3, 8)), "past_value": np.zeros((1, 2, 3, 8))})
    # an int8 cache's rows carry their scale: D + 4 bytes, so a row of D is refused by shape
    with pytest.raises(Exception, match=r"edgebit\.Attention: input 3 'past_key' must be \[B, kv_num_heads, L, D \+ 4\] "
                                        r"= \[1, 2, 3, 12\], got \[1, 2, 3, 8\]"):
        run_bad(edgebit_model(4, 2, 8, cache=TensorProto.INT8),
                {"past_key": np.zeros((1, 2, 3, 8), np.int8), "past_value": np.zeros((1, 2, 3, 8), np.int8)})


def rope_model(hq, hkv, d, cache=FLOAT) -> bytes:
    """edgebit.Attention with its optional cos, sin inputs: RoPE applied inside the op."""
    ins, outs = io_infos(hq, hkv, d, FLOAT, cache)
    ins += [helper.make_tensor_value_info("total_len", INT64, [1]),
            helper.make_tensor_value_info("key_start", INT64, ["B"]),
            helper.make_tensor_value_info("cos", FLOAT, ["B", "T", "D3"]),
            helper.make_tensor_value_info("sin", FLOAT, ["B", "T", "D3"])]
    node = helper.make_node("Attention", [i.name for i in ins], [o.name for o in outs], domain="edgebit",
                            num_heads=hq, kv_num_heads=hkv, scale=d ** -0.5)
    graph = helper.make_graph([node], "attention_rope", ins, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("edgebit", 1)],
                             ir_version=10).SerializeToString()


@pytest.mark.parametrize("kind", ["float32", "float16"])
@pytest.mark.parametrize("hq,hkv,d", [(8, 2, 32), (20, 5, 128)])
def test_fused_rope_is_the_reference_rope_then_attention(hq, hkv, d, kind):
    """With cos, sin the op rotates query and key itself (what `edgebit export onnx` writes, instead of eight RoPE
    nodes for each): outputs and caches bit for bit the op's on q, k rotated by the reference's apply_rope, with
    positions from two batch rows at different offsets (left padding's position ids)."""
    from edgebit.model.reference import apply_rope, rope_cos_sin, rope_inv_freq
    from edgebit.model.config import RopeConfig

    dtype = np.float16 if kind == "float16" else np.float32
    cache_kind = TensorProto.FLOAT16 if kind == "float16" else FLOAT
    fused = session(rope_model(hq, hkv, d, cache_kind), 2)
    plain = session(edgebit_model(hq, hkv, d, cache=cache_kind), 2)
    b, t = 2, 7
    feeds = step_inputs(b, t, hq, hkv, d, seed=5)
    positions = torch.tensor([[3, 4, 5, 6, 7, 8, 9], [0, 1, 2, 3, 4, 5, 6]])
    cos, sin = rope_cos_sin(rope_inv_freq(d, RopeConfig(theta=10000.0)), torch.arange(16))
    cos_bt, sin_bt = cos[positions], sin[positions]  # [B, T, D]

    def roped(x, heads):
        x = torch.from_numpy(x).view(b, t, heads, d).transpose(1, 2)  # apply_rope's (B, heads, T, D)
        return apply_rope(x, cos_bt[:, None], sin_bt[:, None]).transpose(1, 2).reshape(b, t, heads * d).numpy()

    past = np.zeros((b, hkv, 0, d), dtype)
    common = {"value": feeds["value"], "past_key": past, "past_value": past, "total_len": np.array([t]),
              "key_start": np.array([0, 0])}
    mine = fused.run(None, {**common, "query": feeds["query"], "key": feeds["key"], "cos": cos_bt.numpy(),
                            "sin": sin_bt.numpy()})
    ref = plain.run(None, {**common, "query": roped(feeds["query"], hq), "key": roped(feeds["key"], hkv)})
    for a, r in zip(mine, ref):
        assert np.array_equal(a, r)
    with pytest.raises(Exception, match=r"input 7 'cos' must be \[B, T, D\] = \[2, 7, %d\]" % d):
        fused.run(None, {**common, "query": feeds["query"], "key": feeds["key"], "cos": cos_bt[:, :, :-2].numpy(),
                         "sin": sin_bt.numpy()})

