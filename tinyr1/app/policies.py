"""The policy picker: which policies an app root offers (tinyr1.registry's entries, then its
folders), what the app says about each (the banner, the registry's size / memory / how-to-get
list, the recommended settings), and the Reason tab's picker listeners.

    catalog = PolicyCatalog("/path/to/root")
    catalog.policy_choices()        # [(label, key), ...], the default first
    catalog.banner("tiny-grpo")     # Markdown: what that policy is

The listing is computed once per catalogue (lazily, at the first use) and again on Rescan: it may
probe the hub (one TCP connection, at most registry.PROBE_TIMEOUT_S, never under HF_HUB_OFFLINE=1).
"""
from __future__ import annotations

import json
import os
import threading
import traceback
from pathlib import Path
from typing import Any, Sequence

import gradio as gr

from tinyr1.registry import EMBEDDED, PolicyOption, policy_options, registry_entries

__all__ = ["EMBEDDED", "PolicyCatalog", "PolicyOption", "policy_banner", "policy_info", "policy_metadata",
           "memory_text", "recommended_settings", "select_policy", "rescan_policies"]


def policy_metadata(path: str | Path) -> dict[str, Any]:
    """The free-form ``policy.json`` of a policy directory ({} when absent or unreadable)."""
    try:
        return json.loads((Path(path) / "policy.json").read_text())
    except (OSError, ValueError):
        return {}


def policy_banner(
    label: str | None, path: str | None, loaded: dict[str, Any] | None = None, entry: Any = None
) -> str:
    """The honest banner of what the selected policy is (Markdown), from its ``policy.json``, its
    registry entry (``entry``: description, size, memory per quantization, recommended settings)
    and, once loaded, from ``Policy.describe()`` (parameters, device, quantization)."""
    if not label or not path:
        return (
            "**No policy found.** Put a policy directory under `assets/policies/` (the embedded tiny "
            "policies are built by `tinyr1 train-tiny`), get one of the registry's (the **Policies** table "
            "under the picker says how), or train one in the GRPO tab."
        )
    meta = (loaded or {}).get("metadata") or policy_metadata(path)
    name = Path(path).name
    model_type = meta.get("kind") or _model_type(path)
    if meta.get("kind") == "random":
        what = "random weights, for testing the app: the text it writes is noise."
    elif name in EMBEDDED or meta.get("kind") in ("embedded", "tiny"):
        what = (
            "the embedded tiny policy, trained by this repository on a synthetic world of coloured "
            "shapes. It only knows coloured shapes: on real videos its thinking and answers are "
            "guesses, and its `<think>…</think><answer>…</answer>` format may break."
        )
    elif entry is not None and entry.kind != "tiny":
        what = str(entry.description).rstrip(".") + "."
        if not entry.local_path:
            what += f" Not on this machine yet: the first run downloads it from the hub ({entry.source})."
    elif label.startswith("runs/"):
        what = f"a policy you fine-tuned with GRPO (`{label}/final`)."
    elif model_type in ("tinyllava", "tinyllava_official"):
        what = f"an official TinyLLaVA-Video checkpoint (`{path}`), converted to tinyr1's architecture in memory."
    elif model_type == "qwen2_5_vl":
        what = f"a Qwen2.5-VL checkpoint (`{path}`), asked with the R1 prompt (think, then answer)."
    else:
        what = f"`{path}`."
    facts = []
    described = meta.get("description") or meta.get("note")
    if described and meta.get("kind") != "random":
        facts.append(str(described).rstrip(".") + ".")
    elif entry is not None and entry.kind == "tiny":
        facts.append(str(entry.description).rstrip(".") + ".")
    for key, title in (("accuracy", "accuracy"), ("data", "data"), ("seed", "seed")):
        if key in meta and not isinstance(meta[key], (dict, list)):
            facts.append(f"{title}: {meta[key]}")
    if isinstance(meta.get("accuracy"), dict):
        acc = ", ".join(f"{k} {v:.1%}" if isinstance(v, float) and 0 <= v <= 1 else f"{k} {v}"
                        for k, v in meta["accuracy"].items() if not isinstance(v, (dict, list)))
        if acc:
            facts.append(f"accuracy: {acc}")
    if entry is not None and not loaded:
        size = f"{_count_text(entry.params)} parameters; " if entry.params else ""
        memory = memory_text(entry)
        if memory:
            facts.append(f"{size}weights {memory} (activations and the KV cache come on top).")
        recommended = recommended_settings(entry)
        frames = f"{recommended['frames']} frames, " if recommended["frames"] else ""
        facts.append(f"Recommended: {frames}temperature {recommended['temperature']:g}, "
                     f"{recommended['max_new_tokens']} new tokens (set below when you pick it).")
    if loaded:
        params = (loaded.get("parameters") or {}).get("total")
        bits = [f"{params / 1e6:.1f}M parameters" if params else None, loaded.get("device"),
                loaded.get("quantization") or None, f"{loaded.get('num_frames')} frames by default" if loaded.get("num_frames") else None]
        facts.append(" · ".join(b for b in bits if b))
    tail = (" " + " ".join(f for f in facts if f)) if facts else ""
    return f"**Policy: {label}** — {what}{tail}"


def _model_type(path: str | Path) -> str | None:
    """config.json's model_type of a directory (None when it is no directory or unreadable)."""
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _count_text(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}K"


def _bytes_text(gb: float) -> str:
    if gb <= 0:  # the registry rounds a big model's figures to 0.01 GB: a tiny copy of one reads 0
        return "<0.01 GB"
    return f"{gb:.2f} GB" if gb >= 1 else f"{gb * 1000:.2f} MB" if gb >= 1e-3 else f"{gb * 1e6:.0f} KB"


def memory_text(entry: Any) -> str:
    """The weights' size per quantization, e.g. ``7.23 GB bf16 · 4.46 GB int8 · 3.24 GB nf4``."""
    order = ("fp32", "bf16", "int8", "nf4")
    return " · ".join(f"{_bytes_text(entry.memory_gb[k])} {k}" for k in order if k in (entry.memory_gb or {}))


def recommended_settings(entry: Any) -> dict[str, Any]:
    """The Reason tab's generation settings for a registry entry (its ``settings``), kept within
    the sliders' ranges: frames 0 = the policy's own, temperature 0-2, top-p 0.05-1, 16-1024 new
    tokens (Video-R1's top-p 0.001 becomes 0.05: with temperature 0.1 both are nearly greedy)."""
    s = dict(entry.settings or {})
    return {
        "frames": int(min(32, max(0, s.get("num_frames") or 0))),
        "temperature": float(min(2.0, max(0.0, s.get("temperature", 0.0)))),
        "top_p": float(min(1.0, max(0.05, s.get("top_p", 1.0)))),
        "max_new_tokens": int(min(1024, max(16, s.get("max_new_tokens", 256)))),
        "seed": int(s.get("seed", 0)),
    }


def policy_info(entries: Sequence[Any]) -> str:
    """The registry as Markdown, one item per policy (it sits in a narrow column): its size, its
    weights per quantization, whether it is here, and what to do to get it when it is not."""
    if not entries:
        return "The policy registry could not be read (see the server log)."
    items = []
    for e in entries:
        if e.local_path:
            here = "✓ on this machine"
        elif e.available:
            here = f"⤓ downloads on first use ({e.source})"
        else:
            here = f"✗ not here — {e.how_to_get}"
        size = f"{_count_text(e.params)} parameters" if e.params else "size unknown until it is here"
        memory = f" · weights {memory_text(e)}" if e.memory_gb else ""
        items.append(f"- **{e.label}** (`{e.id}`): {size}{memory} · {here}".replace("\n", " "))
    missing = sum(not e.available for e in entries)
    head = (f"{missing} of the {len(entries)} policies tinyr1 knows are not on this machine: each says what to do, "
            "then press **↻ Rescan**." if missing else f"All {len(entries)} policies tinyr1 knows are available.")
    return head + " Weights only: activations and the KV cache come on top.\n\n" + "\n".join(items)



class PolicyCatalog:
    """The policies an app root offers, with the registry listed once (and on ``refresh``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._entries: list[Any] | None = None  # the registry as listed at the first use / last Rescan
        self._entries_lock = threading.Lock()

    # -- discovery
    def registry_entries(self, refresh: bool = False) -> list[Any]:
        """The registry's entries for this root (``registry_entries``), listed once and again on
        ``refresh`` (Rescan): listing may probe the hub, which no request should wait for twice.
        A registry that cannot be read leaves the pickers with the folders on disk."""
        with self._entries_lock:
            if self._entries is None or refresh:
                try:
                    self._entries = registry_entries(self.root)
                except Exception:  # the app must start whatever the registry's state
                    traceback.print_exc()
                    self._entries = []
            return list(self._entries)

    def refresh_policies(self) -> None:
        """List the registry again (weights downloaded or removed since, the hub now reachable)."""
        self.registry_entries(refresh=True)

    def policy_options(self) -> dict[str, PolicyOption]:
        """key -> option, the default first (``policy_options``); the folders are looked at anew
        on every call (a GRPO run that just finished is there at once)."""
        return policy_options(self.root, self.registry_entries())

    def policies(self) -> dict[str, str]:
        """key -> what ``load_policy`` gets (a directory, or a registry id)."""
        return {key: option.target for key, option in self.policy_options().items()}

    def policy_choices(self) -> list[tuple[str, str]]:
        """The pickers' choices: (what the dropdown shows, key)."""
        return [(option.label, key) for key, option in self.policy_options().items()]

    def policy_info(self) -> str:
        """The registry's table (size, memory, here or how to get it), Markdown."""
        return policy_info(self.registry_entries())

    def default_policy(self) -> str | None:
        return next(iter(self.policies()), None)

    def serving_default(self, cuda: bool) -> tuple[str | None, str | None, str]:
        """(policy key, quantization, why) the app opens on (``tinyr1.policy.spec.serving_default``):
        TinyLLaVA-Video-R1 in nf4 with a CUDA device when it is offered, else the first choice;
        TINYR1_POLICY (a key, or a registry alias) and TINYR1_QUANTIZATION override."""
        from tinyr1.policy.spec import serving_default

        keys = list(self.policies())
        env = dict(os.environ)
        option = self.option(env.get("TINYR1_POLICY")) if env.get("TINYR1_POLICY") else None
        if option is not None:
            env["TINYR1_POLICY"] = option.key  # an alias (tinyllava-video-r1) names its entry's key
        return serving_default(keys, cuda=cuda, env=env)

    def real_policy_hint(self) -> str:
        """One sentence on getting the real TinyLLaVA-Video-R1 (shown under an embedded policy's
        banner): pick it when it is offered, else the registry's how-to (an `hf download` command)."""
        from tinyr1.policy.spec import GPU_POLICY, GPU_QUANTIZATION

        entry = next((e for e in self.registry_entries() if e.id == GPU_POLICY), None)
        if entry is None:
            return ""
        if entry.available:
            return (f"For real videos pick **{entry.label}** above (Quantization {GPU_QUANTIZATION} on a CUDA GPU; "
                    "the app opens on it by itself where one is).")
        return (f"For real videos, get **{entry.label}** and run on a CUDA GPU (the app then opens on it in "
                f"{GPU_QUANTIZATION}): {entry.how_to_get}.")

    def option(self, key: str | None) -> PolicyOption | None:
        """The option behind a key; a registry alias (``tinyllava-video-r1``) finds its entry's."""
        options = self.policy_options()
        if key in options:
            return options[key]
        from tinyr1.registry import find_spec

        spec = find_spec(key or "") if key else None
        return options.get(spec.id) if spec else None

    def recommended_settings(self, key: str | None) -> dict[str, Any] | None:
        """The generation settings the registry recommends for ``key`` (None for a folder)."""
        option = self.option(key)
        return recommended_settings(option.entry) if option and option.entry else None

    def banner(self, label: str | None) -> str:
        option = self.option(label)
        if option is None:
            return policy_banner(label, None)
        text = policy_banner(option.label, option.target, self.loaded_description(option.target), option.entry)
        if Path(option.target).name in EMBEDDED:
            hint = self.real_policy_hint()
            text += f"\n\n{hint}" if hint else ""
        return text

    def loaded_description(self, target: str) -> dict[str, Any] | None:
        """``Policy.describe()`` of the policy behind ``target`` once it is loaded (None here:
        a catalogue loads nothing; the Reason tab's Workbench does)."""
        return None

    def why_unavailable(self, key: str | None) -> str:
        """What to say for a key that is no choice: how to get a registry policy, else what there is."""
        from tinyr1.registry import find_spec

        spec = find_spec(key or "")
        entry = next((e for e in self.registry_entries() if spec and e.id == spec.id), None)
        if entry is not None:
            return f"{entry.label} is not on this machine: {entry.how_to_get}"
        known = ", ".join(self.policies()) or "none"
        return f"unknown policy {key!r}; available: {known}"



# ------------------------------------------------------------------------- the picker's listeners


def select_policy(catalog: PolicyCatalog, outputs: dict[str, Any], key: str | None) -> dict[Any, Any]:
    """A new pick: its banner, and a registry policy's recommended settings (a folder keeps the
    settings chosen). ``outputs``: the components by name (banner, frames, temperature, top_p,
    max_new, seed)."""
    update: dict[Any, Any] = {outputs["banner"]: catalog.banner(key)}
    recommended = catalog.recommended_settings(key)
    if recommended is not None:
        for name, setting in (("frames", "frames"), ("temperature", "temperature"), ("top_p", "top_p"),
                              ("max_new", "max_new_tokens"), ("seed", "seed")):
            update[outputs[name]] = recommended[setting]
    return update


def rescan_policies(catalog: PolicyCatalog, current: str | None, default: str | None = None) -> Any:
    """List the registry again; the picker keeps ``current`` when it is still offered, else takes
    ``default`` (or the first choice)."""
    catalog.refresh_policies()
    found = catalog.policy_choices()
    keys = [key for _, key in found]
    fallback = default if default is not None else next(iter(keys), None)
    return gr.update(choices=found, value=current if current in keys else fallback)
