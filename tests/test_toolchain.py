"""Where anvil, forge and solc come from: settings, PATH, ~/.vouch/toolchain, a checkout last.

Fake programs in temp dirs stand in for the tools; nothing here runs them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import vouch._resources as resources
from vouch.cre_adapters.evm import ToolchainMissing, find_toolchain, sources_digest

ROOT = Path(__file__).resolve().parents[1]


def _program(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def _toolchain_dir(path: Path) -> Path:
    """A dir laid out as `npm ci` of vouch's package.json (+ the shim) leaves it."""
    _program(path / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
    _program(path / "node_modules/@foundry-rs/forge-linux-amd64/bin/forge")
    _program(path / "scripts/solc-shim.js")
    oz = path / "node_modules/@openzeppelin/contracts/package.json"
    oz.parent.mkdir(parents=True)
    oz.write_text("{}")
    return path


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    on_path = tmp_path / "bin"
    for tool in ("anvil", "forge", "solc"):
        _program(on_path / tool)
    return {
        "explicit": _toolchain_dir(tmp_path / "explicit"),
        "path": on_path,
        "user": _toolchain_dir(tmp_path / "home/.vouch/toolchain"),
        "checkout": _toolchain_dir(tmp_path / "checkout"),
        "empty": tmp_path / "nothing",
    }


def _find(places: dict[str, Path], env: dict[str, str], **kw: object) -> dict[str, str | None]:
    chain = find_toolchain(env=env, user_dir=places["user"], dev_checkout=places["checkout"], **kw)  # type: ignore[arg-type]
    return {tool: chain.origin(tool) for tool in ("anvil", "forge", "solc")}


def test_the_lookup_order_is_explicit_then_path_then_user_dir_then_checkout(
    places: dict[str, Path],
) -> None:
    every = {"anvil": "toolchain_dir", "forge": "toolchain_dir", "solc": "toolchain_dir"}
    env = {"PATH": str(places["path"]), "VOUCH_TOOLCHAIN_DIR": str(places["explicit"])}
    assert _find(places, env) == every
    env = {"PATH": str(places["path"])}
    assert _find(places, env) == dict.fromkeys(every, "PATH")
    env = {"PATH": str(places["empty"])}
    assert _find(places, env) == dict.fromkeys(every, "~/.vouch/toolchain")
    shutil.rmtree(places["user"])
    assert _find(places, env) == dict.fromkeys(every, "checkout (dev)")
    # one program named explicitly beats every dir; the others are still looked up
    env = {"PATH": str(places["path"]), "VOUCH_ANVIL": str(places["path"] / "anvil")}
    assert _find(places, env) == {"anvil": "VOUCH_ANVIL", "forge": "PATH", "solc": "PATH"}
    chain = find_toolchain(
        places["explicit"], env={"PATH": ""}, tools={"solc": places["path"] / "solc"}
    )
    assert chain.solc == places["path"] / "solc"
    assert (
        chain.anvil == places["explicit"] / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    )
    assert chain.root == places["explicit"]


def test_nothing_is_found_relative_to_vouchs_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old lookup walked up from its own file to this checkout; now only a caller's
    explicit dev_checkout may name it."""
    monkeypatch.chdir(tmp_path)
    chain = find_toolchain(env={"PATH": str(tmp_path)}, user_dir=tmp_path / "none")
    for tool in ("anvil", "forge", "solc"):
        assert chain.origin(tool) is None
        with pytest.raises(ToolchainMissing) as caught:
            getattr(chain, tool)
        assert "`vouch toolchain install`" in str(caught.value)
        assert str(ROOT) not in str(caught.value)
    with pytest.raises(ToolchainMissing, match="vouch toolchain install"):
        _ = chain.node_modules


def test_an_explicit_program_that_does_not_exist_is_an_error_naming_the_setting(
    places: dict[str, Path],
) -> None:
    env = {"PATH": str(places["path"]), "VOUCH_FORGE": str(places["empty"] / "forge")}
    chain = find_toolchain(env=env, user_dir=places["user"])
    with pytest.raises(ToolchainMissing, match="VOUCH_FORGE names .* which does not exist"):
        _ = chain.forge


def test_settings_reach_the_lookup(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vouch._settings import VouchSettings

    monkeypatch.setenv("PATH", str(places["empty"]))
    settings = VouchSettings(toolchain_dir=places["explicit"], anvil=places["path"] / "anvil")
    chain = resources.toolchain(settings)
    assert chain.origin("anvil") == "VOUCH_ANVIL" and chain.anvil == places["path"] / "anvil"
    assert chain.origin("forge") == "toolchain_dir"
    assert chain.contracts == resources.contracts_dir()


def test_a_checkout_is_only_a_fallback_when_vouch_runs_from_it(tmp_path: Path) -> None:
    # here (an editable install) vouch/_contracts/src is the committed symlink to contracts/src
    assert resources.contracts_dir().is_symlink()
    assert resources.contracts_dir().resolve() == ROOT / "contracts" / "src"
    if (ROOT / "node_modules").is_dir():
        assert resources.dev_checkout() == ROOT
    # an installed wheel holds real files there: no checkout, whatever is around it
    copy = tmp_path / "vouch" / "_contracts" / "src"
    shutil.copytree(ROOT / "contracts" / "src", copy)
    assert not copy.is_symlink()


def test_shipped_artifacts_are_used_only_while_they_match_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = tmp_path / "src"
    shutil.copytree(ROOT / "contracts" / "src", sources)
    shipped = tmp_path / "artifacts.json"
    monkeypatch.setattr(resources, "contracts_dir", lambda: sources)
    monkeypatch.setattr(resources, "ARTIFACTS_FILE", shipped)
    assert resources.shipped_artifacts() is None  # none shipped
    artifacts = {"source_hash": "ab", "contracts": {}}
    shipped.write_text(
        json.dumps({"sources_digest": sources_digest(sources), "artifacts": artifacts})
    )
    found = resources.shipped_artifacts()
    assert found is not None and found.source_hash == "ab"
    gate = sources / "SettlementGate.sol"
    gate.write_text(gate.read_text() + "\n// edited\n")
    assert resources.shipped_artifacts() is None  # stale: compile the edited sources instead


def test_user_contracts_import_vouch_and_openzeppelin_through_remappings(
    places: dict[str, Path],
) -> None:
    chain = find_toolchain(places["explicit"], env={"PATH": ""})
    maps = resources.solc_remappings(chain)
    oz = places["explicit"] / "node_modules/@openzeppelin/contracts"
    assert maps == [f"@openzeppelin/contracts/={oz}/", f"vouch/={resources.contracts_dir()}/"]
    assert (resources.contracts_dir() / "ReceiverBase.sol").is_file()


def test_the_package_ships_its_contracts_toolchain_files_and_templates() -> None:
    import tomllib

    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = data["package-data"]["vouch"]
    assert {"_contracts/src/**/*.sol", "_contracts/artifacts.json", "_toolchain/*"} <= set(shipped)
    assert {"templates/**/*", "templates/**/.*"} <= set(shipped)
    for name in ("package.json", "package-lock.json", "solc-shim.js"):
        assert (resources.toolchain_files_dir() / name).is_file(), name


def test_solc_selects_shim_on_path_is_passed_over(places: dict[str, Path]) -> None:
    """An activated .venv puts solc-select's `solc` first on PATH (slither brings it); it
    downloads compilers at run time, which fails offline, so the lookup goes on past it."""
    shim = places["path"] / "solc"
    shim.write_text(
        "#!/usr/bin/env python\nimport sys\nfrom solc_select.__main__ import solc\n"
        "if __name__ == '__main__':\n    sys.exit(solc())\n"
    )
    env = {"PATH": str(places["path"])}
    assert _find(places, env) == {"anvil": "PATH", "forge": "PATH", "solc": "~/.vouch/toolchain"}
    chain = find_toolchain(env=env, user_dir=places["empty"], dev_checkout=places["checkout"])
    assert chain.origin("solc") == "checkout (dev)"
    assert any("solc-select" in place for place in chain.tried["solc"])
