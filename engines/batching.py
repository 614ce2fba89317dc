"""Give an ONNX model with a fixed batch of 1 a dynamic batch axis, so person crops run in one call.

The exported BlazePose and YOLOX graphs fix the batch at 1: in their input/output shapes and in Reshape
targets such as ``[1, 195]``. The rewrite names the leading axis of every graph input and output
``batch``, turns a leading 1 in constant Reshape targets into 0 (copy the input's batch), drops stale
intermediate shape annotations, and then checks with ONNX Runtime that a batch of N gives the same
results as N single runs. A graph that does not pass this check is refused, never written.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engines.base import EngineError


def make_batch_dynamic(src: str | os.PathLike, dst: str | os.PathLike, check_batch: int = 3,
                       atol: float = 1e-3) -> Path:
    import onnx
    from onnx import numpy_helper

    src, dst = Path(src), Path(dst)
    try:
        model = onnx.load(str(src))
    except Exception as e:
        raise EngineError(f"cannot read ONNX model {src}: {e}") from e
    _resize_sizes_to_scales(model, src)
    g = model.graph
    inits = {i.name for i in g.initializer}
    for vi in list(g.input) + list(g.output):
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        if not dims:
            raise EngineError(f"{src}: tensor {vi.name!r} has no shape; cannot find its batch axis")
        if dims[0].HasField("dim_value") and dims[0].dim_value != 1:
            raise EngineError(f"{src}: tensor {vi.name!r} has batch {dims[0].dim_value}; only batch 1 is rewritten")
        dims[0].dim_param = "batch"
    reshape_targets = {n.input[1] for n in g.node if n.op_type == "Reshape" and len(n.input) > 1}
    for init in g.initializer:
        if init.name in reshape_targets:
            _zero_lead(init, numpy_helper)
    for n in g.node:
        if n.op_type == "Constant" and n.output[0] in reshape_targets:
            for a in n.attribute:
                if a.name == "value":
                    _zero_lead(a.t, numpy_helper)
    used = {i for n in g.node for i in n.input}
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)
    del g.value_info[:]
    tmp = dst.with_name(f".{dst.name}.tmp")
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(tmp))
    try:
        _check_equivalent(src, tmp, check_batch, atol)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, dst)
    return dst


def _resize_sizes_to_scales(model, src: Path) -> None:
    """Resize nodes given output ``sizes`` (batch included) get the equivalent ``scales`` instead."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    resizes = [n for n in g.node if n.op_type == "Resize" and len(n.input) == 4 and n.input[3]]
    if not resizes:
        return
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [d.dim_value for d in dims]
    inits = {i.name: i for i in g.initializer}
    for k, n in enumerate(resizes):
        sizes_init = inits.get(n.input[3])
        in_shape = shapes.get(n.input[0])
        if sizes_init is None or in_shape is None:
            raise EngineError(f"{src}: Resize node {n.name or k} has computed sizes; cannot make the batch dynamic")
        sizes = numpy_helper.to_array(sizes_init).astype(np.float64)
        scales = (sizes / np.asarray(in_shape, np.float64)).astype(np.float32)
        name = f"{n.input[3]}__as_scales"
        g.initializer.append(numpy_helper.from_array(scales, name))
        n.input[2] = name
        n.input[3] = ""
        if not n.input[1]:
            n.input[1] = ""


def _zero_lead(tensor, numpy_helper) -> None:
    a = numpy_helper.to_array(tensor)
    if a.ndim == 1 and a.size >= 2 and a[0] == 1:
        b = a.copy()
        b[0] = 0  # Reshape: 0 copies the input's dimension (the batch)
        tensor.CopyFrom(numpy_helper.from_array(b, tensor.name))


def _check_equivalent(src: Path, dyn: Path, batch: int, atol: float) -> None:
    from engines.onnxruntime_backend import OrtEngine

    one = OrtEngine(src, threads=1)
    many = OrtEngine(dyn, threads=1)
    rng = np.random.default_rng(0)
    feed = {}
    for s in many.inputs:
        shape = [batch] + [int(d) for d in s.shape[1:]]
        feed[s.name] = rng.random(shape, dtype=np.float32).astype(s.dtype)
    try:
        got = many.infer(feed)
    except EngineError as e:
        raise EngineError(f"{src}: the batch axis cannot be made dynamic ({e})") from e
    for i in range(batch):
        ref = one.infer({k: v[i:i + 1] for k, v in feed.items()})
        for name, r in ref.items():
            g = got[name][i:i + 1]
            if g.shape != r.shape or not np.allclose(g, r, atol=atol, rtol=1e-3):
                raise EngineError(f"{src}: output {name!r} of a batch differs from single runs; the graph mixes "
                                  "the batch axis and cannot be made dynamic by this rewrite")
