"""Tern's compiler: checkpoint -> folded float network -> integer IR -> golden model -> hardware.

One subpackage per stage, in the order a build runs them (docs/architecture.md):

    gen.frontend   a model file in: checkpoint (or NIR) -> float network -> folds -> quantised IR
    gen.ir         the integer IR and what is defined on it: golden model, bounds, the float64
                   reference, the IR file, statistics, random networks for tests
    gen.ops        registry: one module per IR projection op (conv2d, dense, identity)
    gen.engines    registry: one module per engine (kind x family) the planner can choose
    gen.plan       lanes, families, widths, memories, queues and cycles of a network
    gen.backend    Verilog (emit), register map, manifest and reports, yosys synthesis, NIR out
    gen.boards     the boards, each with its device description (gen.boards.xc7: memory
                   primitives and fitted logic costs of Xilinx 7-series parts)
    gen.flow       the commands: build, deploy, inspect, export (`python -m gen <command>`)

Public entry points (import the modules; this package imports nothing eagerly):

    gen.frontend.compile_checkpoint(path, wbits=8) -> Compiled(float_net, folded, layered, network)
    gen.frontend.compile_dict(ckpt_dict, name, wbits)         the same for an in-memory checkpoint
    gen.ir             Network, Layer, Projection, Conv2d, Dense, Identity, same_network
    gen.ir.irfile      save(net, stem), load(stem), model_id(net)            (docs/ir.md)
    gen.ir.golden      run(net, images, record=...) -> GoldenResult; lif_step, project, fanout
    gen.ir.reference   fake_quantised(net), make_reference_model(net), run_reference(net, images)
    gen.ir.bounds      network_bounds(net) -> {layer: LayerBounds}, signed_width, check_fits_int64
    gen.ir.random_net  random_network(rng, ...), random_checkpoint(rng, ...), random_images(...)
    gen.plan.make_plan(net, board, ...) -> Plan
    gen.flow.build.build(model, out=...) / build_from_ir(net, out=...)     (docs/build.md)
    python -m gen build|deploy|inspect|export ...
"""
