"""The thread policy: usable CPUs from affinity and cgroup quotas, override order, bad values, set before torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from audit import threads
from audit.adversaries.embeddings import Embedder
from audit.cli import cli
from audit.errors import AuditError

EIGHT_CPUS = set(range(8))
POLICY_VARIABLES = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", threads.ENV_VAR)


def fake_cgroup(tmp_path, files: dict[str, str], proc_line: str = "0::/"):
    """A cgroup tree under tmp_path and the /proc/self/cgroup that points into it."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_line + "\n")
    return {"cgroup_root": tmp_path, "proc_cgroup": proc}


def test_a_cgroup_v2_quota_caps_the_usable_cpus_rounded_down(tmp_path):
    where = fake_cgroup(tmp_path, {"cpu.max": "250000 100000\n"})
    assert threads.usable_cpus(EIGHT_CPUS, **where) == 2


def test_cgroup_v2_max_means_no_quota(tmp_path):
    where = fake_cgroup(tmp_path, {"cpu.max": "max 100000\n"})
    assert threads.cgroup_cpu_quota(where["cgroup_root"], where["proc_cgroup"]) is None
    assert threads.usable_cpus(EIGHT_CPUS, **where) == 8


def test_a_cgroup_v1_cfs_quota_caps_the_usable_cpus(tmp_path):
    where = fake_cgroup(tmp_path, {"cpu,cpuacct/cpu.cfs_quota_us": "300000\n",
                                   "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, proc_line="4:cpu,cpuacct:/")
    assert threads.usable_cpus(EIGHT_CPUS, **where) == 3


def test_a_cgroup_v1_quota_of_minus_one_means_none(tmp_path):
    where = fake_cgroup(tmp_path, {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
                        proc_line="1:cpu:/")
    assert threads.usable_cpus(EIGHT_CPUS, **where) == 8


def test_a_parent_cgroups_quota_binds_the_process_below_it(tmp_path):
    where = fake_cgroup(tmp_path, {"audits.slice/cpu.max": "100000 100000\n",
                                   "audits.slice/one/cpu.max": "max 100000\n"}, proc_line="0::/audits.slice/one")
    assert threads.usable_cpus(EIGHT_CPUS, **where) == 1


def test_the_affinity_mask_wins_when_it_is_tighter_than_the_quota(tmp_path):
    where = fake_cgroup(tmp_path, {"cpu.max": "400000 100000\n"})
    assert threads.usable_cpus({5}, **where) == 1


def test_a_quota_below_one_cpu_still_leaves_one_thread(tmp_path):
    where = fake_cgroup(tmp_path, {"cpu.max": "50000 100000\n"})
    assert threads.usable_cpus(EIGHT_CPUS, **where) == 1


def test_unreadable_or_odd_cgroup_files_mean_no_quota(tmp_path):
    where = fake_cgroup(tmp_path, {"cpu.max": "garbage\n"})
    (tmp_path / "proc-self-cgroup").unlink()
    assert threads.usable_cpus(EIGHT_CPUS, **where) == 8


def test_the_flag_beats_the_variable_beats_omp_num_threads_beats_usable_cpus():
    environ = {threads.ENV_VAR: "2", "OMP_NUM_THREADS": "5"}
    assert (threads.choose("3", environ, cpus=4).threads, threads.choose("3", environ, cpus=4).source) == (3, "--threads")
    assert (threads.choose(None, environ, cpus=4).threads, threads.choose(None, environ, cpus=4).source) == (
        2, threads.ENV_VAR)
    del environ[threads.ENV_VAR]
    assert threads.choose(None, environ, cpus=4).source == "OMP_NUM_THREADS"
    assert threads.choose(None, {}, cpus=4) == threads.ThreadPolicy(4, "PASSIVE", "auto", 4)


def test_idle_threads_sleep_unless_the_user_chose_a_wait_policy():
    assert threads.choose(None, {}, cpus=2).wait_policy == "PASSIVE"
    assert threads.choose(None, {"OMP_WAIT_POLICY": "ACTIVE"}, cpus=2).wait_policy == "ACTIVE"


BAD_COUNTS = ["0", "-1", "two", "1.5", "²", str(threads.MAX_THREADS + 1)]


@pytest.mark.parametrize("value", BAD_COUNTS + [""])
def test_a_bad_threads_flag_is_refused_by_name(value):
    with pytest.raises(AuditError, match="--threads"):
        threads.choose(value, {}, cpus=2)


@pytest.mark.parametrize("variable", [threads.ENV_VAR, "OMP_NUM_THREADS"])
@pytest.mark.parametrize("value", BAD_COUNTS)
def test_a_bad_thread_count_in_the_environment_is_refused_by_name(variable, value):
    with pytest.raises(AuditError, match=variable):
        threads.choose(None, {variable: value}, cpus=2)


def test_a_bad_threads_flag_or_variable_is_one_line_and_exit_1():
    runner = CliRunner()
    for args, env in ((["--threads", "many", "probes", "list"], {}), (["probes", "list"], {threads.ENV_VAR: "0"})):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output


def test_the_cli_sets_the_policy_before_torch_loads():
    code = ("from audit.cli import cli\n"
            "cli(['--threads', '1', 'probes', 'list'], standalone_mode=False)\n"
            "import os, torch\n"
            "print(torch.get_num_threads(), torch.get_num_interop_threads(), os.environ['OMP_WAIT_POLICY'])\n")
    env = {k: v for k, v in os.environ.items() if k not in POLICY_VARIABLES}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == "1 1 PASSIVE"


@pytest.mark.parametrize("cpus", [1, 2, 3, 8])
@pytest.mark.parametrize("workers", [None, 1, 2, 5, 16])
def test_embedder_workers_times_their_threads_never_exceed_the_usable_cpus(cpus, workers):
    policy = threads.choose(None, {}, cpus=cpus)
    count, each = Embedder(workers=workers, policy=policy).worker_plan("cpu")
    assert count >= 1 and each >= 1 and count * each <= cpus
    if workers is None:
        assert (count, each) == (cpus, 1)  # one single-threaded worker per CPU, as benchmarked


def test_the_embedder_follows_the_process_policy_by_default():
    count, each = Embedder().worker_plan("cpu")
    assert count * each == threads.current().threads
    assert Embedder().worker_plan("cuda") == (1, threads.current().threads)


def test_the_hardware_manifest_records_the_thread_setting():
    from audit.collect import collection_environment

    hardware = collection_environment()["hardware"]
    policy = threads.current()
    assert (hardware["threads"], hardware["omp_wait_policy"], hardware["threads_source"]) == (
        policy.threads, policy.wait_policy, policy.source)
    assert policy.source != "not applied"  # conftest applies the CLI's policy
