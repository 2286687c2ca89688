"""Bring up what a command needs: chain, contracts, DON. Reuse whatever is already there."""

from __future__ import annotations

import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from cre_adapters import (
    DonConfig,
    DonSources,
    DonSupervisor,
    NodeSpec,
    SourceSpec,
    create_keystore,
    keystore_address,
    load_key,
    read_password,
)
from cre_adapters.evm import (
    ANVIL_DEV_KEYS,
    AnvilProcess,
    Artifacts,
    ChainWriter,
    Deployment,
    DonOnchain,
    ErrorDecoder,
    compile_contracts,
    deploy_settlement_stack,
    find_toolchain,
    free_port,
    rpc_ready,
    start_anvil,
)

from ._approvals import ensure_policy
from ._errors import MissingEnvironment
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


class Stack:
    """The chain, contracts and DON of one vouch home, brought up on demand."""

    def __init__(self, settings: VouchSettings) -> None:
        self.settings = settings
        self.toolchain = find_toolchain(settings.toolchain_dir)

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
    def password(self) -> str:
        """Node keystore password: VOUCH_KEYSTORE_PASSWORD, the password file, or a new random one."""
        if self.settings.keystore_password:
            return self.settings.keystore_password.get_secret_value()
        path = self.password_file()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
        return read_password(path, None)

    def password_file(self) -> Path:
        """Where the keystore password is read from when it is not in the environment."""
        return self.settings.password_file or self.settings.don_dir / "password"

    def node_keystores(self) -> list[Path]:
        """One encrypted keystore per node, created on first use."""
        keys = self.settings.don_dir / "keys"
        paths = [keys / f"node-{i}.json" for i in range(1, self.settings.nodes + 1)]
        missing = [p for p in paths if not p.exists()]
        if missing:
            password = self.password()
            for path in missing:
                create_keystore(path, password)
        return paths

    def approver_keystore(self) -> Path:
        """The approver's encrypted keystore (created on first use); it signs human decisions."""
        path = self.settings.home / "keys" / "approver.json"
        if not path.exists():
            create_keystore(path, self.password())
        return path

    def approver_key(self) -> bytes:
        """The approver's private key, decrypted from its keystore."""
        return load_key(self.approver_keystore(), self.password())

    def deployer_key(self, chain: Chain) -> bytes:
        """The deployer's key: a keystore if configured, else anvil's first dev key on anvil.

        Raises:
            MissingEnvironment: on a non-anvil chain with no deployer keystore.
        """
        if self.settings.deployer_keystore:
            return load_key(self.settings.deployer_keystore, self.password())
        w3 = chain.web3()
        dev = bytes.fromhex(ANVIL_DEV_KEYS[0][2:])
        address = w3.eth.account.from_key(dev).address
        if chain.managed or w3.eth.get_balance(address) > 0:
            return dev
        raise MissingEnvironment(
            f"chain {chain.chain_id} at {chain.url} is not a dev chain: set VOUCH_DEPLOYER_KEYSTORE "
            "to an encrypted keystore of a funded account"
        )

    # contracts ---------------------------------------------------------------
    def artifacts(self) -> Artifacts:
        """Compiled contracts (cached by source hash)."""
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
        """Reuse a live matching deployment, or deploy a new one; return it and whether it is new."""
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
        for i, path in enumerate(keystores, start=1):
            port = (
                old.nodes[i - 1].port if old and len(old.nodes) == len(keystores) else free_port()
            )
            nodes.append(
                NodeSpec(
                    name=f"node-{i}",
                    address=keystore_address(path),
                    port=port,
                    keystore=path.resolve(),
                    source=SourceSpec(market_seed=self.settings.market_seed, node_seed=1000 + i),
                )
            )
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

        The nodes get the keystore password the way vouch got it: through the
        environment when it came from there, else as the password file's path.
        """
        launcher = [sys.executable, "-m", "vouch", "node", "run"]
        env = {}
        if self.settings.keystore_password:
            env["VOUCH_KEYSTORE_PASSWORD"] = self.settings.keystore_password.get_secret_value()
        else:
            launcher += ["--password-file", str(self.password_file())]
        return DonSupervisor(
            don,
            config_file or self.don_file,
            run_dir or self.settings.don_dir / "run",
            launcher,
            env,
        )

    def don_up(self, deployment: Deployment) -> tuple[DonConfig, bool]:
        """Make sure every node runs with the config for ``deployment``; return it and whether it started nodes."""
        self.password()  # the nodes read the password file; create it before they start
        don = self.don_config(deployment)
        old = DonConfig.load(self.don_file) if self.don_file.exists() else None
        supervisor = self.supervisor(don)
        if old == don and supervisor.all_healthy():
            return don, False
        supervisor.stop()
        don.save(self.don_file)
        supervisor.start()
        return don, True

    def don_down(self) -> list[str]:
        """Stop every node of the current DON config."""
        if not self.don_file.exists():
            return []
        return self.supervisor(DonConfig.load(self.don_file)).stop()
