"""The commands of `python -m gen`, each one module with `add_parser(subparsers)` (gen.cli):

    build     checkpoint or IR -> FPGA build folder (named steps, atomic)
    deploy    a build folder -> the folder a user copies to the board
    inspect   what the compiler makes of a model, layer by layer
    export    a model -> NIR, or NIR -> a Tern checkpoint
"""
