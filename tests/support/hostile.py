"""Hostile inputs shared by the hardening tests and benchmarks."""


def yaml_bomb(levels=9, width=9):
    """The classic alias bomb: `a1: &a1 [*a0, *a0, ...]`, each level nine aliases of the one
    before. About 600 bytes that expand to width**levels nodes (387 million for 9 x 9)."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def nested_json(depth=1000):
    """A JSON body nested `depth` levels deep."""
    return '{"a": ' * depth + "1" + "}" * depth
