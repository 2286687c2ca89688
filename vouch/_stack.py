"""Bring up what a command needs: chain, contracts, DON. Reuse whatever is already there."""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from vouch.cre_adapters import (
    ConfigError,
    DonConfig,
    DonSources,
    DonSupervisor,
    NodeSpec,
    SourceSpec,
    create_keystore,
    ensure_password_file,
    keystore_address,
    load_key,
    password_file,
    read_password,
    set_fault,
)
from vouch.cre_adapters.evm import (
    ANVIL_DEV_KEYS,
    AnvilProcess,
    Artifacts,
    ChainWriter,
    Deployment,
    DonOnchain,
    ErrorDecoder,
    compile_contracts,
    deploy_settlement_stack,
    free_port,
    rpc_ready,
    start_anvil,
)

from ._approvals import ensure_policy
from ._errors import MissingEnvironment
from ._resources import shipped_artifacts, toolchain
from ._settings import VouchSettings


class ChainNotRunning(MissingEnvironment):
    """A command that never starts a chain found none running; the CLI exits 2."""

    exit_code = 2


@dataclass
class Chain:
    """A reachable chain and whether vouch manages its anvil."""

    url: str
    chain_id: int
    managed: bool

    def web3(self) -> Web3:
        """A Web3 connected to this chain."""
        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))


def key_password(
    settings: VouchSettings, key_id: str, keystore: Path, file: Path | None = None
) -> str:
    """The password of ``keystore`` (key ``key_id``: node_1.., approver, deployer).

    In order: ``VOUCH_KEY_PASSWORDS__<KEY>``; the key's configured password
    ``file``; ``VOUCH_KEYSTORE_PASSWORD`` (one for all: tests, CI); the key's
    own 0600 file ``<keystore>.password`` (a random one made on first use); an
    old home's shared ``don/password`` for a keystore made before per-key files.

    Raises:
        KeystoreError: the password file is unreadable or readable by others.
    """
    own = settings.key_passwords.get(key_id)
    if own is not None:
        return own.get_secret_value()
    if file is not None:
        return read_password(file, None)
    if settings.keystore_password:
        return settings.keystore_password.get_secret_value()
    path = password_file(keystore)
    legacy = settings.password_file or settings.don_dir / "password"
    if not path.exists() and keystore.exists() and legacy.exists():
        return read_password(legacy, None)
    return read_password(ensure_password_file(path), None, private=True)


class DonMismatch(MissingEnvironment):
    """The running DON is not the one a command asks for; it is never replaced silently."""


class Stack:
    """The chain, contracts and DON of one vouch home, brought up on demand.

    The DON on disk is the truth: unless n and f are given (``--nodes/--f``,
    ``VOUCH_NODES/VOUCH_F``, vouch.toml), every command uses the n and f of the
    DON config saved by the last ``vouch don up``.
    """

    def __init__(self, settings: VouchSettings) -> None:
        self.disk_don = _saved_don(settings.don_dir / "don.json")
        explicit = {"nodes", "f"} & settings.model_fields_set
        if self.disk_don is not None and not explicit:
            shape = {"nodes": len(self.disk_don.nodes), "f": self.disk_don.f}
            settings = settings.model_copy(update=shape)
        self.settings = settings
        self.toolchain = toolchain(settings)
        self.replace_don = False  # `vouch don up` sets it: it may replace a running DON

    # chain ---------------------------------------------------------------
    @property
    def _anvil_file(self) -> Path:
        return self.settings.chain_dir / "anvil.json"

    def running_chain(self) -> Chain | None:
        """The configured or managed chain if it answers, else None."""
        if self.settings.rpc_url:
            chain_id = rpc_ready(self.settings.rpc_url, timeout=3)
            return Chain(self.settings.rpc_url, chain_id, False) if chain_id else None
        try:
            info = json.loads(self._anvil_file.read_text())
        except (OSError, ValueError):
            return None
        chain_id = rpc_ready(info["url"])
        return Chain(info["url"], chain_id, True) if chain_id else None

    def require_chain(self) -> Chain:
        """The running chain, never starting one.

        For commands that only read, and for those that must not leave a chain
        running behind the user's back (`vouch deploy`, `vouch log anchor`).

        Raises:
            ChainNotRunning: no chain answers; the message says how to start it.
        """
        chain = self.running_chain()
        if chain is not None:
            return chain
        if self.settings.rpc_url:
            raise ChainNotRunning(
                f"no chain answers at {self.settings.rpc_url}; check VOUCH_RPC_URL / --rpc-url"
            )
        raise ChainNotRunning(
            "the chain is not running (this command never starts one): "
            "start it with `vouch chain up`"
        )

    def chain_up(self) -> Chain:
        """The configured RPC, or the managed anvil (started, from its saved state, if down).

        Raises:
            MissingEnvironment: if a configured RPC URL does not answer.
        """
        chain = self.running_chain()
        if chain is not None:
            return chain
        if self.settings.rpc_url:
            raise MissingEnvironment(
                f"no chain answers at {self.settings.rpc_url}; check VOUCH_RPC_URL / --rpc-url"
            )
        d = self.settings.chain_dir
        proc = start_anvil(
            self.toolchain,
            chain_id=self.settings.chain_id,
            state_file=d / "state.json",
            log_file=d / "anvil.log",
        )
        d.mkdir(parents=True, exist_ok=True)
        self._anvil_file.write_text(
            json.dumps({"pid": proc.pid, "url": proc.url, "chain_id": proc.chain_id})
        )
        return Chain(proc.url, proc.chain_id, True)

    def chain_down(self) -> bool:
        """Stop the managed anvil; its state is kept for the next `chain up`."""
        try:
            info = json.loads(self._anvil_file.read_text())
        except (OSError, ValueError):
            return False
        AnvilProcess(info["pid"], info["url"], info["chain_id"]).stop()
        self._anvil_file.unlink(missing_ok=True)
        return True

    # keys ------------------------------------------------------------------
    # One secret per key: each keystore NAME.json is unlocked by its own password, from
    # VOUCH_KEY_PASSWORDS__<KEY> or its own 0600 file NAME.password (random, made on first
    # use). VOUCH_KEYSTORE_PASSWORD (one password for every key) is for tests and CI; an old
    # home's shared don/password file still unlocks the keys it encrypted.
    def key_password(self, key_id: str, keystore: Path, file: Path | None = None) -> str:
        """The password of ``keystore`` (key ``key_id``); see ``key_password``."""
        return key_password(self.settings, key_id, keystore, file)

    def node_key_id(self, keystore: Path) -> str:
        """``node_3`` for ``.../node-3.json``."""
        return keystore.stem.replace("-", "_")

    def node_keystores(self) -> list[Path]:
        """One encrypted keystore per node, each with its own password, created on first use."""
        paths = self.settings.node_keystore_paths
        for path in paths:
            if not path.exists():
                create_keystore(path, self.key_password(self.node_key_id(path), path))
        return paths

    def approver_keystore(self) -> Path:
        """The approver's encrypted keystore (created on first use); it signs human decisions.

        ``VOUCH_APPROVER_KEYSTORE`` puts it anywhere (outside the home); its password is
        ``VOUCH_APPROVER_PASSWORD_FILE``, ``VOUCH_KEY_PASSWORDS__APPROVER`` or ``approver.password``.
        """
        path = self.settings.approver_keystore or self.settings.home / "keys" / "approver.json"
        if not path.exists():
            create_keystore(path, self._approver_password(path))
        return path

    def _approver_password(self, path: Path) -> str:
        return self.key_password("approver", path, self.settings.approver_password_file)

    def approver_key(self) -> bytes:
        """The approver's private key, decrypted from its keystore."""
        path = self.approver_keystore()
        return load_key(path, self._approver_password(path))

    def deployer_key(self, chain: Chain) -> bytes:
        """The deployer's key: a keystore if configured, else anvil's first dev key on anvil.

        Raises:
            MissingEnvironment: on a non-anvil chain with no deployer keystore.
        """
        if self.settings.deployer_keystore:
            path = self.settings.deployer_keystore
            return load_key(path, self.key_password("deployer", path))
        w3 = chain.web3()
        dev = bytes.fromhex(ANVIL_DEV_KEYS[0][2:])
        address = w3.eth.account.from_key(dev).address
        if chain.managed or w3.eth.get_balance(address) > 0:
            return dev
        raise MissingEnvironment(
            f"chain {chain.chain_id} at {chain.url} is not a dev chain: set VOUCH_DEPLOYER_KEYSTORE "
            "to an encrypted keystore of a funded account"
        )

    def party_secret(self, chain: Chain) -> bytes:
        """The secret the demo's trading parties are derived from (per escrow idempotency key).

        It belongs to the deployment, not to the worker: a run one worker escrowed half-way
        is finished by another, which must act as the same seller and buyer. In order:
        ``party_keystore``; anvil's first dev key on a chain vouch manages (public anyway,
        so every worker on it shares it whatever its own deployer key); the deployer key.
        """
        if self.settings.party_keystore:
            path = self.settings.party_keystore
            return load_key(path, self.key_password("party", path))
        if chain.managed:
            return bytes.fromhex(ANVIL_DEV_KEYS[0][2:])
        return self.deployer_key(chain)

    # contracts ---------------------------------------------------------------
    def artifacts(self) -> Artifacts:
        """Vouch's compiled contracts: as shipped in the wheel, else compiled (cached by source hash)."""
        shipped = shipped_artifacts()
        if shipped is not None:
            return shipped
        return compile_contracts(self.toolchain, self.settings.home / "cache")

    def writer(self, chain: Chain, artifacts: Artifacts) -> ChainWriter:
        """A chain writer for the deployer."""
        return ChainWriter(
            chain.web3(), self.deployer_key(chain), ErrorDecoder(artifacts.all_abis())
        )

    def deployment(self, chain: Chain, artifacts: Artifacts) -> Deployment | None:
        """The manifest for this chain if its contracts are live and match these sources."""
        path = self.settings.deployment_path(chain.chain_id)
        if not path.exists():
            return None
        manifest = Deployment.load(path)
        w3 = chain.web3()
        live = all(
            len(w3.eth.get_code(Web3.to_checksum_address(a))) > 0
            for a in manifest.contracts.values()
        )
        signers = [keystore_address(p) for p in self.node_keystores()]
        fresh = manifest.source_hash == artifacts.source_hash and manifest.don.signers == signers
        return manifest if live and fresh and manifest.don.f == self.settings.f else None

    def require_deployment(self, chain: Chain, artifacts: Artifacts) -> Deployment:
        """The live deployment on ``chain``.

        Raises:
            MissingEnvironment: if there is none (or it does not match these sources).
        """
        deployment = self.deployment(chain, artifacts)
        if deployment is None:
            raise MissingEnvironment(
                f"no live vouch deployment on chain {chain.chain_id}: "
                "run `vouch deploy` or `vouch demo settlement`"
            )
        return deployment

    def deploy(
        self, chain: Chain, artifacts: Artifacts, force: bool = False
    ) -> tuple[Deployment, bool]:
        """Reuse a live matching deployment, or deploy a new one; return it and whether it is new.

        Raises:
            DonMismatch: the running DON has another n or f (see ``check_don``).
        """
        self.check_don()
        existing = None if force else self.deployment(chain, artifacts)
        if existing is not None:
            self._approval_policy(chain, artifacts, existing)
            return existing, False
        signers = [keystore_address(p) for p in self.node_keystores()]
        manifest = deploy_settlement_stack(
            self.writer(chain, artifacts),
            artifacts,
            DonOnchain(don_id=1, config_version=1, f=self.settings.f, signers=signers),
            workflow_name=self.settings.workflow_name,
            freshness_window=self.settings.freshness_window,
            rpc_url=chain.url,
        )
        self._approval_policy(chain, artifacts, manifest)
        manifest.save(self.settings.deployment_path(chain.chain_id))
        return manifest, True

    def _approval_policy(self, chain: Chain, artifacts: Artifacts, deployment: Deployment) -> None:
        """The approver holds APPROVER_ROLE and the gate's threshold is the configured one."""
        approver = keystore_address(self.approver_keystore())
        ensure_policy(
            self.writer(chain, artifacts),
            artifacts,
            deployment,
            approver,
            self.settings.approval_threshold,
        )

    # DON ---------------------------------------------------------------------
    @property
    def don_file(self) -> Path:
        """The DON config the nodes read."""
        return self.settings.don_dir / "don.json"

    def don_config(self, deployment: Deployment) -> DonConfig:
        """The DON config for ``deployment``, keeping ports of an existing config when it matches."""
        old = DonConfig.load(self.don_file) if self.don_file.exists() else None
        keystores = self.node_keystores()
        nodes = []
        same = old is not None and len(old.nodes) == len(keystores)
        for i, path in enumerate(keystores, start=1):
            node = NodeSpec(
                name=f"node-{i}",
                address=keystore_address(path),
                port=old.nodes[i - 1].port if old and same else free_port(),
                keystore=path.resolve(),
                source=SourceSpec(market_seed=self.settings.market_seed, node_seed=1000 + i),
            )
            if old and same and self.settings.don_sources is None:
                # the DON on disk keeps the sources and faults `don up --sources` gave it
                kept = old.nodes[i - 1]
                node = node.model_copy(update={"source": kept.source, "fault": kept.fault})
            nodes.append(node)
        config = DonConfig(
            don_id=deployment.don.don_id,
            config_version=deployment.don.config_version,
            f=deployment.don.f,
            chain_id=deployment.chain_id,
            forwarder=deployment.address("Forwarder"),
            nodes=nodes,
            admin_token_file=self.admin_token_file().resolve(),
        )
        if self.settings.don_sources is not None:  # every command keeps the configured sources
            config = DonSources.load(self.settings.don_sources).apply(config)
        return config

    def admin_token_file(self) -> Path:
        """The 0600 file holding the token of the nodes' /admin endpoint, created on first use."""
        path = self.settings.don_dir / "admin.token"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return path

    def supervisor(
        self, don: DonConfig, config_file: Path | None = None, run_dir: Path | None = None
    ) -> DonSupervisor:
        """Starts and stops this DON's node processes (another DON's: its own file and run dir).

        Each node finds its own keystore password (``key_password``) under this
        home; a shared VOUCH_KEYSTORE_PASSWORD is passed on through the environment.
        """
        # the lean entry: a node process imports the node, not the CLI (issue 19)
        launcher = [sys.executable, "-m", "vouch.cre_adapters.node"]
        env = {}
        if self.settings.keystore_password:
            env["VOUCH_KEYSTORE_PASSWORD"] = self.settings.keystore_password.get_secret_value()
        for key_id, secret in self.settings.key_passwords.items():  # vouch.toml / env, per key
            if key_id.startswith("node_"):
                env[f"VOUCH_KEY_PASSWORDS__{key_id.upper()}"] = secret.get_secret_value()
        legacy = self.settings.password_file or self.settings.don_dir / "password"
        if legacy.exists() and any(not password_file(n.keystore).exists() for n in don.nodes):
            # a home from before per-key password files: the CLI's lookup knows its shared file
            home = str(self.settings.home)
            launcher = [sys.executable, "-m", "vouch", "--home", home, "node", "run"]
        return DonSupervisor(
            don,
            config_file or self.don_file,
            run_dir or self.settings.don_dir / "run",
            launcher,
            env,
        )

    def check_don(self) -> None:
        """Refuse when a running DON has another n or f than this command asks for.

        Raises:
            DonMismatch: naming both shapes and the command that replaces the running DON.
        """
        old = self.disk_don
        if old is None or self.replace_don:
            return
        asked = (self.settings.nodes, self.settings.f)
        if (len(old.nodes), old.f) == asked or not self.supervisor(old).running():
            return
        raise DonMismatch(
            f"the running DON has {len(old.nodes)} nodes (f={old.f}); this command asks for "
            f"{asked[0]} (f={asked[1]}) through --nodes/--f, VOUCH_NODES/VOUCH_F or vouch.toml. "
            f"Run `vouch don up --nodes {asked[0]} --f {asked[1]}` to replace it, or drop that "
            "setting to use the running DON as it is"
        )

    def don_up(self, deployment: Deployment) -> tuple[DonConfig, bool]:
        """The DON for ``deployment``; return it and whether nodes were started.

        A running DON with this config is used as it is: never restarted, never
        healed (a node that is down stays down). Nodes start when none runs; a
        running DON whose config differs is replaced only for a new deployment
        of the same n and f (runtime faults re-applied) or by ``vouch don up``
        (``replace_don``); otherwise ``DonMismatch`` names what to run.
        """
        self.check_don()
        don = self.don_config(deployment)
        old = _saved_don(self.don_file)
        running = self.supervisor(old).running() if old is not None else []
        if old == don and running:
            return don, self._start_missing(don) if self.replace_don else False
        keep_faults = old is not None and _same_shape(old, don)
        if old is not None and running and not keep_faults and not self.replace_don:
            raise DonMismatch(
                f"the running DON's config differs from what this command needs "
                f"({_difference(old, don)}): run `vouch don up` to apply it"
            )
        faults = self.supervisor(old).runtime_faults() if old is not None else {}
        if old is not None:
            self.supervisor(old).stop()
        supervisor = self.supervisor(don)
        supervisor.forget_faults()
        don.save(self.don_file)
        self.disk_don = don
        killed = (
            [n for n, f in faults.items() if f.mode == "down" and f.kill] if keep_faults else []
        )
        supervisor.start([n.name for n in don.nodes if n.name not in killed])
        if keep_faults:
            for name, fault in faults.items():
                supervisor.record_fault(name, fault)
                if name not in killed:
                    set_fault(don, name, fault)
        return don, True

    def _start_missing(self, don: DonConfig) -> bool:
        """`vouch don up` on a running DON: start nodes not running, unless a fault keeps them down."""
        supervisor = self.supervisor(don)
        faults = supervisor.runtime_faults()
        down = {n for n, f in faults.items() if f.mode == "down"}
        running = set(supervisor.running())
        missing = [n.name for n in don.nodes if n.name not in running | down]
        if missing:
            supervisor.start(missing)
            for name in missing:
                if name in faults:
                    set_fault(don, name, faults[name])
        return bool(missing)

    def don_down(self) -> list[str]:
        """Stop every node of the current DON config (its config and n, f stay on disk)."""
        if not self.don_file.exists():
            return []
        return self.supervisor(DonConfig.load(self.don_file)).stop()


def _saved_don(path: Path) -> DonConfig | None:
    try:
        return DonConfig.load(path) if path.exists() else None
    except ConfigError:
        return None


def _same_shape(old: DonConfig, new: DonConfig) -> bool:
    """Same nodes (names, keys, ports, sources, faults) and f: only the deployment changed."""
    return old.f == new.f and old.nodes == new.nodes


def _difference(old: DonConfig, new: DonConfig) -> str:
    if (len(old.nodes), old.f) != (len(new.nodes), new.f):
        return f"n={len(old.nodes)}, f={old.f} running; n={len(new.nodes)}, f={new.f} needed"
    changed = [n.name for n, m in zip(old.nodes, new.nodes, strict=True) if n != m]
    return f"nodes {', '.join(changed)} differ (sources, faults or keys)"
