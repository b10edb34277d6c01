"""`python -m gen export`: a model to NIR, or a NIR graph to a Tern checkpoint (docs/interop.md).

    python -m gen export model.pt --nir out.nir        compile, then write the fake-quantised
                                                      network as a NIR graph (HDF5)
    python -m gen export model.nir --checkpoint out.pt --convention spikingjelly --dt 1e-4
                                  --timesteps 2 --input-scale 1/255
                                                      map a foreign NIR graph onto a Tern
                                                      checkpoint, declaring what NIR leaves open

A .nir file whose metadata declares the conventions (Tern's own exports do) builds directly:
`python -m gen build model.nir`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from gen.frontend import compile_checkpoint
from gen.backend.nir_export import network_to_graph, write_graph
from gen.frontend.nir_import import read_nir


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("export", help="write a model as NIR, or a NIR graph as a Tern checkpoint",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="Tern checkpoint (.pt) or NIR graph (.nir)")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--nir", metavar="OUT.nir", help="write the compiled model as a NIR graph")
    out.add_argument("--checkpoint", metavar="OUT.pt", help="write a NIR graph as a Tern checkpoint")
    p.add_argument("--wbits", type=int, default=8, help="weight bits when compiling (default 8)")
    conv = p.add_argument_group("NIR conventions (override the graph's tern.* metadata)")
    conv.add_argument("--convention", choices=["spikingjelly", "snntorch", "sinabs", "nir"],
                      help="the producer: sets --if-gain and --fire")
    conv.add_argument("--dt", type=float, help="the producer's time step")
    conv.add_argument("--if-gain", choices=["r", "r_dt"], help="IF input gain r (sinabs/snnTorch) or r·dt")
    conv.add_argument("--fire", choices=["ge", "gt"], help="the producer fires on v ≥ θ (ge) or v > θ (gt)")
    conv.add_argument("--timesteps", type=int, help="T")
    conv.add_argument("--input-scale", help="the graph's input is pixel × this: 1/255 or 1")
    p.set_defaults(func=run)
    return p


def _conventions(args) -> dict:
    return {"convention": args.convention, "dt": args.dt, "if_gain": args.if_gain, "fire": args.fire,
            "timesteps": args.timesteps, "input_scale": args.input_scale}


def export_nir(model: str, out: str, wbits: int = 8) -> Path:
    if Path(out).suffix != ".nir":
        raise ValueError(f"--nir must name a .nir file, not {out!r}")
    network = compile_checkpoint(model, wbits=wbits).network
    write_graph(network_to_graph(network), out)
    return Path(out)


def nir_to_checkpoint_file(model: str, out: str, **conventions) -> Path:
    import os
    import tempfile

    import torch

    if Path(model).suffix != ".nir":
        raise ValueError(f"--checkpoint converts a .nir graph, not {model!r}")
    ckpt = read_nir(model, **conventions)
    ckpt["meta"]["command"] = f"python -m gen export {model} --checkpoint {out}"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(ckpt, tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def run(args) -> int:
    if args.nir:
        if Path(args.model).suffix == ".nir":
            raise ValueError(f"{args.model} is already a NIR graph; --nir exports a Tern checkpoint (.pt)")
        path = export_nir(args.model, args.nir, wbits=args.wbits)
    else:
        path = nir_to_checkpoint_file(args.model, args.checkpoint, **_conventions(args))
    print(f"wrote {path}")
    return 0
