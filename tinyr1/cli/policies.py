"""``tinyr1 policies``: the policies tinyr1 knows, whether each can run here, and what each needs.

    tinyr1 policies                 # a table: id, kind, available, parameters, memory per quantization
    tinyr1 policies --json          # one JSON list of the registry entries (tinyr1.registry.PolicyEntry)
    tinyr1 policies --no-probe      # never try to reach the hub (also implied by HF_HUB_OFFLINE=1)

An entry is available when its weights are on this machine or can be downloaded now; otherwise
the last column says how to get it. Memory is the weights alone, in GB (1e9 bytes) or MB, computed from
the architecture (tinyr1/registry.py; docs/POLICIES.md explains the figures). Any id or alias
listed here works as ``tinyr1 reason --policy ID``.
"""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "policies",
        help="list the known policies: availability, size, memory per quantization",
        description="List the policy registry: the embedded tiny policies, the official TinyLLaVA-Video-R1 pair, "
        "Qwen2.5-VL-3B-Instruct and Video-R1-7B, with whether each can run here and what it needs.",
    )
    parser.add_argument("--json", action="store_true", help="print the entries as one JSON list")
    parser.add_argument("--no-probe", action="store_true",
                        help="do not check whether the hub can be reached (absent weights then count as unavailable)")
    parser.set_defaults(func=run)


def _params(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"


def _size(entry, key: str) -> str:
    """The weights' size with its unit in the cell (GB from 0.1 GB, else MB): the tiny policies'
    few MB and the real ones' GB share a column."""
    value = entry.memory_gb.get(key)
    if value is None:
        return "?"
    return f"{value:.2f} GB" if value >= 0.1 else f"{value * 1000:.1f} MB"


def run(args: argparse.Namespace) -> int:
    from tinyr1.registry import list_policies

    entries = list_policies(probe_network=not args.no_probe)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=1))
        return 0
    header = ("id", "kind", "ready", "params", "bf16", "int8", "nf4")
    rows = [(e.id, e.kind, "yes" if e.available else "no", _params(e.params), _size(e, "bf16"), _size(e, "int8"),
             _size(e, "nf4")) for e in entries]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    print(line(header))
    for r in rows:
        print(line(r))
    print()
    for e in entries:
        print(f"{e.id}: {e.how_to_get}")
    return 0
