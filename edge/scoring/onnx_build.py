"""Build the STG-NF ONNX graph directly from the weights with ``onnx.helper`` (no torch, no tracer).

The graph computes exactly what :mod:`edge.scoring.flow_numpy` computes, from the same folded
weights: input ``x (N, 2, T, 18)`` float32, outputs ``nll (N,)`` bits per dimension and the latent
``z (N, 2, T, 18)``. The batch dimension is symbolic. Opset 17, plain operators (Add, Mul, Conv,
ReduceSum, Relu, Sigmoid, Log, MatMul, Split, Concat), so TensorRT and ONNX Runtime both take it.
"""

from __future__ import annotations

import math

import numpy as np

from edge.scoring.architecture import SCALE_EPS, StgnfArchitecture
from edge.scoring.flow_numpy import fold

OPSET = 17
INPUT = "x"
OUTPUTS = ("nll", "z")


def build_onnx(weights: dict[str, np.ndarray], arch: StgnfArchitecture, *, producer: str = "poselift-edge"):
    """Return an ``onnx.ModelProto`` for a validated weight set."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    ff = fold(weights, arch)
    nodes, inits = [], []
    counter = iter(range(1 << 30))

    def const(value, name_hint: str) -> str:
        name = f"{name_hint}_{next(counter)}"
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def const_i64(value, name_hint: str) -> str:
        name = f"{name_hint}_{next(counter)}"
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), name))
        return name

    def op(kind: str, inputs: list[str], hint: str, **attrs) -> str:
        out = f"{hint}_{next(counter)}"
        nodes.append(helper.make_node(kind, inputs, [out], name=out, **attrs))
        return out

    T, V, K = arch.seg_len, arch.n_joints, arch.kernel
    pad = (K - 1) // 2
    ax3 = const_i64([3], "axes_v")
    ax123 = const_i64([1, 2, 3], "axes_ctv")
    split11 = const_i64([1, 1], "split")
    c_two = const(2.0, "two")
    c_eps = const(SCALE_EPS, "eps")
    a_val = float(ff.adjacency[0, 0])
    A = const(ff.adjacency.astype(np.float32), "adjacency") if not ff.uniform else None

    s0, s1 = f"{INPUT}_c0", f"{INPUT}_c1"
    nodes.append(helper.make_node("Split", [INPUT, split11], [s0, s1], axis=1, name="split_input"))
    ch0, ch1 = s0, s1
    ld = None
    ld_const = 0.0
    for k, s in enumerate(ff.steps):
        h = f"s{k}"
        scale_an = np.exp(s.an_logs)
        a0 = op("Mul", [op("Add", [ch0, const(s.an_bias[0], h + "_anb0")], h + "_an0"),
                        const(scale_an[0], h + "_ans0")], h + "_act0")
        a1 = op("Mul", [op("Add", [ch1, const(s.an_bias[1], h + "_anb1")], h + "_an1"),
                        const(scale_an[1], h + "_ans1")], h + "_act1")
        ld_const += s.ld_const
        z1, z2 = a1, a0  # channel reversal, then split in halves
        if ff.uniform:
            m = op("ReduceSum", [z1, ax3], h + "_jsum", keepdims=1)  # (N, 1, T, 1)
            gw = s.gcn_w * a_val
        else:
            m = op("MatMul", [z1, A], h + "_agg")  # (N, 1, T, V)
            gw = s.gcn_w
        vp = s.gcn_b.shape[1]
        y = op("Relu", [op("Add", [op("Mul", [m, const(gw.reshape(1, 2, 1, 1), h + "_gw")], h + "_g"),
                                   const(s.gcn_b.reshape(1, 2, 1, vp), h + "_gb")], h + "_gcn")], h + "_relu1")
        c = op("Conv", [y, const(s.tcn_w[..., None], h + "_tw"), const(s.tcn_b, h + "_tb")], h + "_tcn",
               kernel_shape=[K, 1], pads=[pad, 0, pad, 0])
        c0, c1 = f"{h}_tc0", f"{h}_tc1"
        nodes.append(helper.make_node("Split", [c, split11], [c0, c1], axis=1, name=f"{h}_split"))
        if s.res_w is not None:
            r0 = op("Add", [op("Mul", [z1, const(s.res_w[0], h + "_rw0")], h + "_r0m"),
                            const(s.res_b[0], h + "_rb0")], h + "_r0")
            r1 = op("Add", [op("Mul", [z1, const(s.res_w[1], h + "_rw1")], h + "_r1m"),
                            const(s.res_b[1], h + "_rb1")], h + "_r1")
            c0, c1 = op("Add", [c0, r0], h + "_h0"), op("Add", [c1, r1], h + "_h1")
        shift = op("Relu", [c0], h + "_shift")
        raw = op("Relu", [c1], h + "_raw")
        scale = op("Add", [op("Sigmoid", [op("Add", [raw, c_two], h + "_r2")], h + "_sig"), c_eps], h + "_scale")
        z2 = op("Mul", [op("Add", [z2, shift], h + "_zs"), scale], h + "_z2")
        lds = op("ReduceSum", [op("Log", [scale], h + "_log"), ax123], h + "_ld", keepdims=0)
        if s.coupling_ld_weight != 1:
            lds = op("Mul", [lds, const(s.coupling_ld_weight, h + "_ldw")], h + "_ldx")
        ld = lds if ld is None else op("Add", [ld, lds], h + "_ldsum")
        ch0, ch1 = z1, z2

    R = const(arch.prior_mean, "prior_mean")
    d0 = op("Sub", [ch0, R], "d0")
    d1 = op("Sub", [ch1, R], "d1")
    sq = op("Add", [op("ReduceSum", [op("Mul", [d0, d0], "sq0"), ax123], "ss0", keepdims=0),
                    op("ReduceSum", [op("Mul", [d1, d1], "sq1"), ax123], "ss1", keepdims=0)], "ss")
    dims = arch.dims
    # nll = -(ld + ld_const - 0.5 * (sq / (1 + eps) + D log 2pi)) / (D ln 2)
    inv = 1.0 / (dims * math.log(2.0))
    t1 = op("Mul", [sq, const(0.5 / (1.0 + SCALE_EPS) * inv, "c_sq")], "nll_sq")
    t2 = op("Mul", [ld, const(-inv, "c_ld")], "nll_ld")
    bias = (-ld_const + 0.5 * dims * math.log(2.0 * math.pi)) * inv
    nodes.append(helper.make_node("Add", [op("Add", [t1, t2], "nll_sum"), const(bias, "c_bias")], ["nll"],
                                  name="nll"))
    nodes.append(helper.make_node("Concat", [ch0, ch1], ["z"], axis=1, name="z"))

    graph = helper.make_graph(
        nodes, "stgnf",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["N", 2, T, V])],
        [helper.make_tensor_value_info("nll", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 2, T, V])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer)
    model.ir_version = 8  # readable by ONNX Runtime >= 1.10 and TensorRT 8.5
    onnx.checker.check_model(model)
    return model
