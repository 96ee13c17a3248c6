"""`jupiter_config.ini`: the original's files load unchanged; names and integers both work."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jupiter.model.bundled import data_dir
from jupiter.model.config import JupiterConfig, parse_config
from jupiter.model.errors import InputError

ORIGINAL = textwrap.dedent(
    """\
    [CONFIG]
    STATIC_MAPPING = 0
    SCHEDULER = 1
    TRANSFER = 0
    PROFILER = 0
    RUNTIME = 1
    PRICING = 1
    PRICE_OPTION = 0
    [PORT]
    MONGO_SVC = 6200
    MONGO_DOCKER = 27017
    SSH_SVC = 5000
    SSH_DOCKER = 22
    FLASK_SVC = 6100
    FLASK_DOCKER = 8888
    [AUTH]
    USERNAME = root
    PASSWORD = PASSWORD
    [OTHER]
    MAX_LOG = 10
    SSH_RETRY_NUM = 20
    TASK_QUEUE_SIZE = -1
    [SCHEDULER_LIST]
    HEFT = 0
    WAVE_RANDOM = 1
    WAVE_GREEDY = 2
    HEFT_MODIFIED = 3
    [PROFILERS_LIST]
    DRUPE = 0
    [TRANSFER_LIST]
    SCP = 0
    [PRICING_LIST]
    NONPRICING = 0
    PUSH_MULTIPLEHOME = 1
    DRIVEN_MULTIPLEHOME = 2
    [PRICING_FUNCTION_LIST]
    SUM = 1
    MAX = 2
    """
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "jupiter_config.ini"
    path.write_text(text)
    return path


def test_original_file_loads_unchanged(tmp_path: Path) -> None:
    path = _write(tmp_path, ORIGINAL)
    config = parse_config(path)
    assert config.scheduler == "wave_random"
    assert config.transfer == "scp"
    assert config.profiler == "drupe"
    assert config.pricing == "push"
    assert config.price_function == "sum"
    assert config.receiver_stats is True
    assert config.static_mapping is False
    assert config.username == "root"
    assert config.ports.flask_svc == 6100
    assert config.ports.ssh_docker == 22
    assert config.other.task_queue_size == -1
    assert config.other.ssh_retry_num == 20
    assert config.warnings == (
        f"{path}:18: [AUTH] PASSWORD is ignored: Jupiter never uses passwords (transfers use a "
        "per-deployment token, SCP uses keys); delete the line",
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("SCHEDULER = 0", "heft"),
        ("SCHEDULER = 2", "wave_greedy"),
        ("SCHEDULER = 3", "heft_modified"),
        ("SCHEDULER = WAVE_GREEDY", "wave_greedy"),
        ("SCHEDULER = heft_modified", "heft_modified"),
        ("SCHEDULER = best", "best"),
        ("SCHEDULER = cpop", "cpop"),
    ],
)
def test_scheduler_by_number_or_name(tmp_path: Path, line: str, expected: str) -> None:
    config = parse_config(_write(tmp_path, ORIGINAL.replace("SCHEDULER = 1", line)))
    assert config.scheduler == expected


def test_integers_resolve_through_the_files_own_list(tmp_path: Path) -> None:
    text = ORIGINAL.replace("SCHEDULER = 1", "SCHEDULER = 7").replace("HEFT = 0", "HEFT = 7")
    assert parse_config(_write(tmp_path, text)).scheduler == "heft"


@pytest.mark.parametrize(
    ("line", "expected"),
    [("PRICING = 0", "nonpricing"), ("PRICING = 2", "event"), ("PRICING = push", "push")],
)
def test_pricing(tmp_path: Path, line: str, expected: str) -> None:
    assert parse_config(_write(tmp_path, ORIGINAL.replace("PRICING = 1", line))).pricing == expected


@pytest.mark.parametrize(("value", "expected"), [("0", "sum"), ("1", "sum"), ("2", "max"), ("max", "max")])
def test_price_option(tmp_path: Path, value: str, expected: str) -> None:
    text = ORIGINAL.replace("PRICE_OPTION = 0", f"PRICE_OPTION = {value}")
    assert parse_config(_write(tmp_path, text)).price_function == expected


def test_pricing_section(tmp_path: Path) -> None:
    path = _write(tmp_path, "[PRICING]\nINTERVAL = 0.1\nSTALE = 0.8\nMARGIN = 0\nW_NETWORK = 2\nW_MEMORY = 0\n")
    price = parse_config(path).price
    assert (price.interval, price.stale, price.margin, price.w_network, price.w_memory) == (0.1, 0.8, 0.0, 2.0, 0.0)
    assert (price.w_execution, price.w_queue, price.w_cpu) == (1.0, 1.0, 1.0)


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = parse_config(_write(tmp_path, "[CONFIG]\n"))
    assert config == JupiterConfig(path=config.path)
    assert config.scheduler == "best"
    assert config.transfer == "http"


def test_lists_missing_use_the_originals(tmp_path: Path) -> None:
    config = parse_config(_write(tmp_path, "[CONFIG]\nSCHEDULER = 2\nPRICING = 2\nRUNTIME = 0\n"))
    assert (config.scheduler, config.pricing, config.receiver_stats) == ("wave_greedy", "event", False)


def test_unknown_keys_warn(tmp_path: Path) -> None:
    path = _write(tmp_path, "[CONFIG]\nSHEDULER = 1\n[EXTRA]\nA = 1\n")
    assert parse_config(path).warnings == (
        f"{path}:2: unknown key SHEDULER in [CONFIG] is ignored (known: STATIC_MAPPING, SCHEDULER, "
        "TRANSFER, PROFILER, RUNTIME, PRICING, PRICE_OPTION)",
        f"{path}:3: unknown section [EXTRA] is ignored",
    )


def test_new_sections(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "[DEPLOY]\nAPP = apps/x\nHOME_CHILD = a : b\n[MAPPER]\nMAX_TASK_ALLOWED = 3\nW_NET = 2.5\nSEED = 9\n",
    )
    config = parse_config(path)
    assert config.deploy.home_child == ("a", "b")
    assert config.resolve(config.deploy.app or Path()) == tmp_path / "apps" / "x"
    assert (config.mapper.max_task_allowed, config.mapper.w_net, config.mapper.seed) == (3, 2.5, 9)
    assert (config.mapper.stream_rate, config.mapper.stream_cap) == (0.0, 0.9)  # as fast as it goes, under 90 %


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[CONFIG]\nRUNTIME = 2\n",
            "2: RUNTIME: expected 0 (senders only) or 1 (senders and receivers), got 2",
        ),
        ("[CONFIG]\nSTATIC_MAPPING = maybe\n", "2: STATIC_MAPPING: expected 0 or 1, got 'maybe'"),
        ("[OTHER]\nMAX_LOG = ten\n", "2: MAX_LOG: expected a whole number, got 'ten'"),
        ("[MAPPER]\nW_CPU = -1\n", "2: W_CPU: must not be negative, got -1"),
        ("[MAPPER]\nMAX_TASK_ALLOWED = -2\n", "2: MAX_TASK_ALLOWED: must be at least 0, got -2"),
        ("[MAPPER]\nSTREAM_CAP = 1.5\n", "2: STREAM_CAP: must be at most 1, got 1.5"),
        ("[MAPPER]\nSTREAM_RATE = inf\n", "2: STREAM_RATE: expected a finite number, got 'inf'"),
        ("[CONFIG]\n[CONFIG]\n", "2: section [CONFIG] appears twice; merge the two"),
        ("[CONFIG]\nSCHEDULER heft\n", "2: cannot parse 'SCHEDULER heft'; expected `KEY = value`"),
        (
            "[CONFIG]\nSCHEDULER = 1\n[SCHEDULER_LIST]\nHEFT = zero\n",
            "4: HEFT: expected a whole number, got 'zero'",
        ),
        ("[PRICING]\nINTERVAL = 0\n", "2: INTERVAL: must be more than 0 seconds (e.g. 0.2)"),
        (
            "[PRICING]\nINTERVAL = 0.5\nSTALE = 0.5\n",
            "3: STALE: must be longer than INTERVAL (0.5 s), or every price goes stale; e.g. 1.0",
        ),
        ("[PRICING]\nW_QUEUE = -1\n", "2: W_QUEUE: must not be negative, got -1"),
    ],
)
def test_bad_values(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        parse_config(path)
    assert str(caught.value) == f"{path}:{message}"


def test_transfer_plugin_and_ssh_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mycopy.py").write_text("class Copy:\n    def __init__(self, settings):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _write(
        tmp_path, "[CONFIG]\nTRANSFER = mycopy:Copy\n[AUTH]\nKEY_FILE = keys/id_ed25519\nKNOWN_HOSTS = keys/known\n"
    )
    config = parse_config(path)
    assert config.transfer == "mycopy:Copy"
    assert (config.ssh.key_file, config.ssh.known_hosts) == (Path("keys/id_ed25519"), Path("keys/known"))
    assert config.warnings == ()
    assert parse_config(_write(tmp_path, "[CONFIG]\nTRANSFER = 0\n")).transfer == "scp"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("mycopy:Copy:x", "'mycopy:Copy:x' is not a plug-in path; write `package.module:Factory`"),
        ("../mycopy:Copy", "'../mycopy:Copy' is not a plug-in path; write `package.module:Factory`"),
        ("ftp", "unknown value 'ftp'; use one of: http, scp"),
    ],
)
def test_transfer_that_is_not_a_plugin_path(tmp_path: Path, value: str, message: str) -> None:
    path = _write(tmp_path, f"[CONFIG]\nSCHEDULER = heft\nTRANSFER = {value}\n")
    with pytest.raises(InputError) as caught:
        parse_config(path)
    assert str(caught.value) == f"{path}:3: TRANSFER: {message}"


def test_plugins_are_not_imported_while_parsing(tmp_path: Path) -> None:
    # Importing runs user code; jupiter.service.plugin_check does it (tests/model/test_plugin_check.py).
    path = _write(tmp_path, "[CONFIG]\nTRANSFER = nosuchmodule:Copy\nPROFILER = nosuch.pkg:Store\n")
    config = parse_config(path)
    assert (config.transfer, config.profiler) == ("nosuchmodule:Copy", "nosuch.pkg:Store")


def test_shipped_default_is_clean() -> None:
    config = parse_config(data_dir() / "jupiter_config.ini")
    assert config.warnings == ()
    assert (config.scheduler, config.pricing, config.transfer) == ("best", "nonpricing", "http")
    assert config.deploy.app == Path("app_specific_files/network_monitoring_app")
