"""Tern's compiler: checkpoint -> folded float network -> integer IR -> golden model -> hardware.

Public entry points (import the modules; this package imports nothing eagerly):

    gen.frontend.compile_checkpoint(path, wbits=8) -> Compiled(float_net, folded, layered, network)
    gen.frontend.compile_dict(ckpt_dict, name, wbits)         the same for an in-memory checkpoint
    gen.ir          Network, Layer, Projection, Conv2d, Dense, Identity, same_network
    gen.irfile      save(net, stem), load(stem), model_id(net)            (docs/ir.md)
    gen.golden      run(net, images, record=...) -> GoldenResult; lif_step, project, fanout
    gen.reference   fake_quantised(net), make_reference_model(net), run_reference(net, images)
    gen.bounds      network_bounds(net) -> {layer: LayerBounds}, signed_width, check_fits_int64
    gen.random_net  random_network(rng, ...), random_checkpoint(rng, ...), random_images(...)
    python -m gen inspect model.pt [--json] [--images N] [--plots DIR]
"""
