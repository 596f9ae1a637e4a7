"""``accel demo``: placeholder, filled in by the DCDM work."""


def add_demo_command(top):
    p = top.add_parser("demo", help="solve the shipped problems with classical and neural preconditioners")
    p.set_defaults(func=lambda args: 0)
