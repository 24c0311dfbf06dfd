"""`vault policy check` and `vault policy show`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vault.cli.app import App
from vault.cli.render import Column, dump_json, output_width, table, wrap
from vault.errors import ConfigError, VaultError
from vault.login.providers import Identity
from vault.policy.rules import (
    FILE_RULES,
    Policy,
    PolicyFile,
    ProviderRules,
    Rule,
    covers,
    format_duration,
    read_policy,
)

_NAMES = {
    "key_backends": "storage.key_backends",
    "vault_dirs": "storage.vault_dirs",
    "print_to_terminal": "tokens.print_to_terminal",
    "agent_allowed": "agent.allowed",
    "agent_max_unlocked": "agent.max_unlocked",
}
_DURATIONS = ("max_token_age", "agent_max_unlocked")


def cmd_policy_check(app: App, ns: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    if ns.files:
        for name in ns.files:
            try:
                parsed = read_policy(Path(name), system=False)
                results.append({"path": name, "ok": True, "rules": parsed.rule_count()})
            except VaultError as exc:
                results.append({"path": name, "ok": False, "error": exc.message})
    else:
        try:
            policy = app.policy
            results = [{"path": f.path, "ok": True, "rules": f.rule_count()} for f in policy.files]
        except VaultError as exc:
            results.append({"path": None, "ok": False, "error": exc.message})
    bad = [r for r in results if not r["ok"]]
    if app.json:
        dump_json({"ok": not bad, "files": results})
    else:
        if not results:
            sys.stdout.write("no policy files in force\n")
        for r in results:
            if r["ok"]:
                sys.stdout.write(f"ok    {r['path']} ({r['rules']} rules)\n")
            else:
                sys.stdout.write(f"FAIL  {r['error']}\n")
    if bad:
        raise ConfigError(f"{len(bad)} policy file(s) invalid", hint="see the lines above")
    return 0


def _value(rule: Rule) -> Any:
    if rule.key in _DURATIONS:
        return format_duration(rule.value)
    if isinstance(rule.value, tuple):
        return list(rule.value)
    return rule.value


def _entries(layer: PolicyFile | ProviderRules, provider: str | None) -> list[dict[str, Any]]:
    out = []
    for key in FILE_RULES:
        rule = getattr(layer, key, None)
        if rule is not None:
            out.append(
                {
                    "rule": (f"providers.{provider}." if provider else "") + _NAMES.get(key, key),
                    "value": _value(rule),
                    "source": rule.source,
                }
            )
    return out


def _identity(app: App, name: str | None) -> Identity | None:
    """What ``vault policy show NAME`` is about: a configured or built-in provider (by what it
    is, as login would see it), or an issuer URL."""
    if name is None:
        return None
    if name.startswith(("https://", "http://")):
        return Identity("oidc", name)
    from vault.login.providers import resolve

    return resolve(name, app.config.providers).identity()


def _effective_agent(policy: Policy) -> dict[str, Any]:
    """The agent rule as the agent will apply it, each part with the file:line it comes from:
    ``allowed`` from the first file forbidding it (else the first allowing it explicitly, else
    no source: nothing restricts it), ``max_unlocked`` from the file with the shortest."""
    denial = policy.agent_denial()
    if denial is not None:
        allowed: dict[str, Any] = {"value": False, "source": denial.source}
    else:
        said = [f.agent_allowed.source for f in policy.files if f.agent_allowed is not None]
        allowed = {"value": True, "source": said[0] if said else None}
    cap = policy.agent_max_unlocked()
    return {
        "allowed": allowed,
        "max_unlocked": None
        if cap is None
        else {"value": format_duration(int(cap[0])), "seconds": int(cap[0]), "source": cap[1]},
    }


def cmd_policy_show(app: App, ns: argparse.Namespace) -> int:
    policy = app.policy
    who = _identity(app, ns.name)
    entries: list[dict[str, Any]] = []
    for f in policy.files:
        for entry in _entries(f, None):
            entry["system"] = f.system
            entries.append(entry)
        for key, rules in f.providers.items():
            if who is None or covers(key, who):
                for entry in _entries(rules, key):
                    entry["system"] = f.system
                    entries.append(entry)
    age = policy.max_token_age(who)
    agent = _effective_agent(policy)
    effective = {
        "max_token_age": None
        if age is None
        else {"value": format_duration(age.value), "seconds": age.value, "source": age.source},
        "agent": agent,
    }
    if app.json:
        dump_json(
            {
                "version": 1,
                "provider": ns.name,
                "identity": None if who is None else {"preset": who.preset, "issuer": who.issuer},
                "files": [{"path": f.path, "system": f.system} for f in policy.files],
                "effective": effective,
                "rules": entries,
            }
        )
        return 0
    if not policy.files:
        sys.stdout.write("No policy files are in force: nothing is restricted.\n")
        return 0
    wide = bool(getattr(ns, "wide", False))
    sys.stdout.write("Rules combine strictest-wins: every rule below applies.\n")
    table(
        [Column("RULE", "wrap", least=12), Column("VALUE", "wrap", least=8),
         Column("FROM", "wrap", least=16)],
        [
            [e["rule"], _shown(e["value"]),
             e["source"] + (" (system)" if e["system"] else " (user)")]
            for e in entries
        ],
        wide=wide,
    )  # fmt: skip
    lines = []
    if age is not None:
        target = f" for {ns.name} ({who.issuer})" if who else ""
        lines.append(f"max_token_age{target}: {format_duration(age.value)} (from {age.source})")
    if agent["allowed"]["source"] is not None:
        value = "true" if agent["allowed"]["value"] else "false"
        lines.append(f"agent.allowed: {value} (from {agent['allowed']['source']})")
    if agent["max_unlocked"] is not None:
        cap = agent["max_unlocked"]
        lines.append(f"agent.max_unlocked: {cap['value']} (from {cap['source']})")
    if lines:
        sys.stdout.write("\n")
        width = None if wide else output_width()
        for line in lines:
            text = f"Effective {line}"
            chunks = [text] if width is None else wrap(text, width - 2)
            sys.stdout.write(chunks[0] + "\n" + "".join(f"  {c}\n" for c in chunks[1:]))
    return 0


def _shown(value: object) -> str:
    """A rule's value for a person: a list as "a, b", a flag as true/false (as YAML has it)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(_shown(v) for v in value) or "(none)"
    return str(value)
