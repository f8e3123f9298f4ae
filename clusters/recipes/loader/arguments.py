"""Module arguments written as words: `key=value` splitting, free-form commands, `action:`."""

from __future__ import annotations


def split_args(text):
    """`key=value` words as Ansible splits them: quotes and {{ ... }} / {% ... %} stay in one word; quotes are removed."""
    words, current, quote, depth = [], [], None, 0
    index = 0
    while index < len(text):
        char = text[index]
        pair = text[index:index + 2]
        if quote:
            if char == "\\" and index + 1 < len(text) and text[index + 1] == quote:
                current.append(quote)
                index += 2
                continue
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif pair in ("{{", "{%", "{#"):
            depth += 1
            current.append(pair)
            index += 2
            continue
        elif pair in ("}}", "%}", "#}") and depth:
            depth -= 1
            current.append(pair)
            index += 2
            continue
        elif char in ("'", '"') and not depth:
            quote = char
        elif char.isspace() and not depth:
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(char)
        index += 1
    if quote:
        raise ValueError("a quote is not closed")
    if current:
        words.append("".join(current))
    return words


def free_form_args(raw):
    """`command: ls -l chdir=/tmp creates=/x`: the words, less Ansible's key=value options at the end or start."""
    options = {}
    words = raw.split(" ")
    kept = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key in ("chdir", "creates", "removes", "executable", "warn", "stdin") and value:
            options[key] = value
        else:
            kept.append(word)
    options.pop("warn", None)
    text = " ".join(kept).strip()
    return {"_raw_params": text, **options} if text else options


def split_action(raw):
    """`action: module args` or `action: {module: x, ...}` into (module name, its arguments)."""
    if isinstance(raw, dict):
        if "module" in raw:
            args = {k: v for k, v in raw.items() if k != "module"}
            module = str(raw["module"])
            if " " in module:
                module, _, rest = module.partition(" ")
                return module, rest
            return module, args
        if len(raw) == 1:
            key = next(iter(raw))
            return str(key), raw[key]
        return "", None
    if isinstance(raw, str) and raw.strip():
        module, _, rest = raw.strip().partition(" ")
        return module, rest.strip() or None
    return "", None
