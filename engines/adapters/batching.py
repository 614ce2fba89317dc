"""Give a batch-1 ONNX pose model a dynamic batch axis, so crops of many people share one call.

The BlazePose conversions are exported for one image: the batch size is baked into the graph's
input and output shapes, into the target shapes of its final Reshape nodes and into the ``sizes``
of its Resize nodes. This rewrites exactly those: Reshape targets get ``-1`` as their first
dimension, Resize ``sizes`` become the equivalent ``scales``, and the graph's batch axis becomes
symbolic. Any other batch-dependent construct is refused with the node named, and callers should
compare the result against the original (``check_dynamic_batch``) before using it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_dynamic_batch(src, dst, batch_name: str = "N") -> Path:
    import onnx
    from onnx import numpy_helper, shape_inference

    model = onnx.load(str(src))
    inferred = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    for node in g.node:
        if node.op_type == "Reshape":
            target = inits.get(node.input[1])
            if target is None:
                raise ValueError(f"{src}: Reshape {node.name!r} has a computed shape; cannot make it batch-dynamic")
            arr = numpy_helper.to_array(target).copy()
            if arr.size and arr[0] == 1:
                arr[0] = -1
                target.CopyFrom(numpy_helper.from_array(arr.astype(np.int64), target.name))
        elif node.op_type == "Resize" and len(node.input) >= 4 and node.input[3]:
            sizes = numpy_helper.to_array(inits[node.input[3]]).astype(np.float64)
            in_shape = shapes.get(node.input[0])
            if not in_shape or any(d is None or d == 0 for d in in_shape):
                raise ValueError(f"{src}: Resize {node.name!r} input shape unknown; cannot convert sizes to scales")
            scales = sizes / np.asarray(in_shape, dtype=np.float64)
            name = node.input[3] + "_scales"
            g.initializer.append(numpy_helper.from_array(scales.astype(np.float32), name))
            roi = node.input[1] if len(node.input) > 1 else ""
            node.input[:] = [node.input[0], roi, name]  # (X, roi, scales)
    used = {i for n in g.node for i in n.input}
    stale = [init for init in g.initializer if init.name not in used]
    for init in stale:
        g.initializer.remove(init)
    for vi in list(g.input) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            dims[0].dim_param = batch_name
    del g.value_info[:]
    onnx.checker.check_model(model)
    dst = Path(dst)
    onnx.save(model, str(dst))
    return dst


def check_dynamic_batch(original, dynamic, batch: int = 3, atol: float = 1e-3, seed: int = 0) -> float:
    """Largest absolute difference between one batched call and ``batch`` single calls."""
    import onnxruntime as ort

    a = ort.InferenceSession(str(original), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(dynamic), providers=["CPUExecutionProvider"])
    inp = a.get_inputs()[0]
    shape = [batch] + [int(d) for d in inp.shape[1:]]
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    singles = [a.run(None, {inp.name: x[i:i + 1]}) for i in range(batch)]
    batched = b.run(None, {b.get_inputs()[0].name: x})
    worst = 0.0
    for k, out in enumerate(batched):
        ref = np.concatenate([s[k] for s in singles])
        worst = max(worst, float(np.abs(out - ref).max()))
    if worst > atol:
        raise ValueError(f"{dynamic}: batched outputs differ from single runs by {worst:g} (> {atol:g})")
    return worst
