# -*- coding: utf-8 -*-
"""The command backend: a provisioning program run by a detached supervisor.

No wall-clock thresholds: every test waits for a condition with a bounded
poll (support.wait_for), and programs block on a "go" file the test creates,
so "order returned while the program still runs" is a fact, not a timing."""

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import unittest

from helpers.support import (ROOT, HomeTestCase, SSHBanner, error_message, load_module,
                             pid_alive, wait_for)

WAIT_FOR_GO = '''
n=0
while [ ! -e go ]; do
  n=$((n + 1)); [ $n -gt 600 ] && { echo "no go file" >&2; exit 9; }
  sleep 0.05
done
'''


def command_config(port, **settings):
    backend = {"type": "command", "command": ["./prog.sh", "first arg"], "timeout": 60,
               "env": {"HOSTER_TOKEN": "t-123"}, "ssh_port": port, "ssh_timeout": 0.2,
               "allow_loopback": True}
    backend.update(settings)
    return {"enabled": True, "backend": backend,
            "configurations": [{"id": "vm2", "descr": "ВМ: 2 CPU, 4 ГБ",
                                "params": {"cpu": 2, "ram_gb": 4, "os": "Rocky 9"}},
                               {"id": "bare", "descr": "no params"}]}


class CommandTestCase(HomeTestCase):
    def setUp(self):
        self.ssh = SSHBanner().start()
        self.addCleanup(self.ssh.stop)
        HomeTestCase.setUp(self)
        self.home.write_config(command_config(self.ssh.port))
        self.addCleanup(self.release_programs)

    def release_programs(self):
        """Never leave a program waiting: create go, kill what is left."""
        self.go()
        for name in ("started", "child"):
            pid = self.read_pid(name)
            if pid and pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def path(self, name):
        return os.path.join(self.home.dir, name)

    def program(self, body):
        with open(self.path("prog.sh"), "w") as handle:
            handle.write("#!/bin/sh\n" + body)
        os.chmod(self.path("prog.sh"), 0o755)

    def go(self):
        open(self.path("go"), "w").close()

    def read_pid(self, name):
        try:
            with open(self.path(name)) as handle:
                return int(handle.read().strip() or 0)
        except (IOError, ValueError):
            return None

    def order(self, config_id="vm2"):
        return self.home.ok("order", config_id)["task_id"]

    def status(self, task_id):
        return self.home.ok("order_status", task_id)

    def wait_status(self, task_id, status):
        """Wait (reading the state file: the worker saves there) for the task's
        status, then answer the caller's order_status."""
        wait_for(lambda: self.task(task_id)["status"] == status,
                 what="task %s to be %s" % (task_id, status))
        return self.status(task_id)

    def task(self, task_id):
        return self.home.state()["tasks"][task_id]

    def task_log(self, task_id):
        return os.path.join(self.home.dir, "log", "tasks", task_id + ".log")

    def running_order(self):
        """Order; wait until the program runs and the worker saved its pid.
        Returns (task id, the program's pid, the worker's pid)."""
        task_id = self.order()
        pid = wait_for(lambda: self.read_pid("started"), what="the program to start")
        worker = wait_for(lambda: self.task(task_id)["data"].get("worker_pid"),
                          what="the worker's pid")
        return task_id, pid, worker

    def start_worker_by_hand(self, lock_wait=60, before_start=None):
        """A task placed as `order` places it, and its worker started here (not
        by launch), by default with a lock_wait long enough for a test to hold
        the state lock while the worker waits. Returns (provider in-process,
        task id, worker)."""
        config = command_config(self.ssh.port)
        config["lock_wait"] = lock_wait
        self.home.write_config(config)
        module = load_module()
        provider = module.Provider(module.Paths(self.home.script))
        configuration = provider.config.by_id["vm2"]

        def place(state):
            task = module.new_task(provider.store.allocate_id(state), "vm2", "command")
            provider.config.backend.place(task, configuration, state)
            state["tasks"][task["id"]] = task
            return task["id"]

        task_id = provider.store.update(place)
        if before_start:
            before_start()
        # as launch() does: the worker inherits its lock, already held
        import fcntl
        workers = os.path.join(self.home.dir, "var", "workers")
        if not os.path.isdir(workers):
            os.mkdir(workers, 0o700)
        lock = os.open(os.path.join(workers, task_id + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            worker = subprocess.Popen(self.home.command(["_worker", task_id]),
                                      env=self.home.env(), stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, pass_fds=(lock,))
        finally:
            os.close(lock)
        self.addCleanup(worker.wait)
        return provider, task_id, worker


RESULT = '''echo '{"server": "127.0.0.1", "server_password": "Pa55-w0rd-xyz"}'
'''


class BackgroundTest(CommandTestCase):
    def test_order_returns_while_the_program_runs(self):
        self.program("echo $$ > started\n" + WAIT_FOR_GO + RESULT)
        task_id = self.order()
        # The order has answered; the program cannot end before the go file exists.
        pid = wait_for(lambda: self.read_pid("started"), what="the program to start")
        self.assertTrue(pid_alive(pid))
        self.assertEqual(self.status(task_id)["status"], "in_progress")
        # (the worker saves "running" once it has started the program: it may be a moment)
        wait_for(lambda: self.task(task_id)["phase"] == "running", what="the phase running")
        self.go()
        answer = self.wait_status(task_id, "finished")
        self.assertEqual(answer["server"], "127.0.0.1")
        self.assertEqual(answer["server_password"], "Pa55-w0rd-xyz")
        wait_for(lambda: not pid_alive(pid), what="the program to end")
        self.assertFalse(os.listdir(os.path.join(self.home.dir, "var", "workers")))

    def test_caller_reads_stdout_until_eof(self):
        """bx-provider reads the plugin's stdout to EOF: no worker may hold it."""
        self.program("echo $$ > started\n" + WAIT_FOR_GO + RESULT)
        proc = subprocess.Popen(self.home.command(["order", "vm2"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.home.env())
        try:
            out, err = proc.communicate(timeout=30)    # EOF on both pipes, or fail
        except subprocess.TimeoutExpired:
            proc.kill()
            self.fail("the caller would hang: the plugin's stdout stayed open")
        task_id = json.loads(out.decode("utf-8"))["task_id"]
        pid = wait_for(lambda: self.read_pid("started"), what="the program to start")
        self.assertTrue(pid_alive(pid), "EOF came while the program still runs")
        self.assertFalse(os.path.exists(self.path("go")))
        self.assertEqual(self.status(task_id)["status"], "in_progress")
        self.go()
        self.wait_status(task_id, "finished")

    def test_the_worker_is_detached_like_a_new_process(self):
        """The worker is a fork of `order`: it keeps none of the caller's
        descriptors (a pipe of the caller's own, beyond stdio, gets its EOF)."""
        self.program("echo $$ > started\n" + WAIT_FOR_GO + RESULT)
        extra_read, extra_write = os.pipe()
        try:
            proc = subprocess.Popen(self.home.command(["order", "vm2"]),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    pass_fds=(extra_write,), env=self.home.env())
            callers = set("pipe:[%d]" % os.fstat(fd).st_ino for fd in (
                extra_read, proc.stdout.fileno(), proc.stderr.fileno()))
            os.close(extra_write)
            out, err = proc.communicate(timeout=30)
            task_id = json.loads(out.decode("utf-8"))["task_id"]
            wait_for(lambda: self.read_pid("started"), what="the program to start")
            self.assertEqual(os.read(extra_read, 1), b"")     # EOF: nobody holds it
        finally:
            os.close(extra_read)
        log = self.home.read(self.home.log_path).decode("utf-8")
        worker = int(re.search(r" worker task=%s .*pid=(\d+)" % task_id, log).group(1))
        self.assertNotEqual(worker, proc.pid)
        fds = {}
        for fd in os.listdir("/proc/%d/fd" % worker):
            try:
                fds[int(fd)] = os.readlink("/proc/%d/fd/%s" % (worker, fd))
            except OSError:         # a file the worker had open for a moment (a log line)
                pass
        lock = os.path.join(self.home.dir, "var", "workers", task_id + ".lock")
        self.assertEqual([fds[0], fds[1], fds[2]], [os.devnull, os.devnull,
                                                    self.task_log(task_id)])
        self.assertIn(lock, fds.values())
        self.assertFalse(callers & set(fds.values()), fds)     # (its program's pipes are its own)
        self.assertEqual(os.getsid(worker), worker)             # a session of its own
        self.assertEqual(os.readlink("/proc/%d/cwd" % worker), self.home.dir)
        with open("/proc/%d/comm" % worker) as handle:
            self.assertEqual(handle.read().strip(), ("%s worker %s" % (self.home.name, task_id))[:15])
        self.go()
        self.wait_status(task_id, "finished")

    def test_the_forked_worker_goes_on_with_the_calls_provider(self):
        """The worker is a fork that runs with the Provider of the call that started it
        (run_task_worker): it parses no command line and builds no Provider of its own,
        so here, where main() and Provider would end the fork, the order still ends."""
        self.program(RESULT)
        module = load_module()
        provider = module.Provider(module.Paths(self.home.script))

        def refused(*args, **kwargs):
            os._exit(97)            # in the fork: the order would never end
        module.main = module.Provider = module.Paths = refused
        answer = module.HANDLERS["order"](provider, module.Args(action="order",
                                                                  config_id="vm2"))
        task_id = answer["task_id"]
        wait_for(lambda: self.task(task_id)["status"] == "finished",
                 what="task %s to be finished by its forked worker" % task_id)
        self.assertEqual(self.task(task_id)["server"], "127.0.0.1")


class ResultTest(CommandTestCase):
    def test_success_gets_env_stdin_and_finishes_with_password(self):
        self.program('''
printf '%s\\n' "$BXPROVIDER_TASK_ID" "$BXPROVIDER_CONFIG_ID" "$BXPROVIDER_PARAMS" \\
    "$HOSTER_TOKEN" "$1" > env.txt
cat > stdin.txt
echo "creating the VM"
echo "debug: the password will be Pa55-w0rd-xyz"
''' + RESULT)
        task_id = self.order()
        answer = self.wait_status(task_id, "finished")
        self.assertEqual(answer["server"], "127.0.0.1")
        self.assertEqual(answer["server_password"], "Pa55-w0rd-xyz")
        self.assertIn("answers SSH-2.0", answer["message"])
        with open(self.path("env.txt"), "rb") as handle:
            env = handle.read().decode("utf-8").split("\n")
        params = {"cpu": 2, "ram_gb": 4, "os": "Rocky 9"}
        self.assertEqual(env[:2], [task_id, "vm2"])
        self.assertEqual(json.loads(env[2]), params)
        self.assertEqual(env[3:5], ["t-123", "first arg"])
        with open(self.path("stdin.txt"), "rb") as handle:
            self.assertEqual(json.loads(handle.read().decode("utf-8")),
                             {"task_id": task_id, "config_id": "vm2", "params": params})
        log_path = self.task_log(task_id)
        log = self.home.read(log_path).decode("utf-8")
        self.assertIn("creating the VM", log)
        self.assertIn('"server": "127.0.0.1"', log)
        self.assertNotIn("Pa55-w0rd-xyz", log)
        self.assertEqual(stat.S_IMODE(os.stat(log_path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(log_path)).st_mode), 0o700)
        self.assertNotIn(b"Pa55-w0rd-xyz", self.home.read(self.home.log_path))

    def test_no_params_and_no_password(self):
        self.program('printf "%s" "$BXPROVIDER_PARAMS" > params.txt\n'
                     'echo \'{"server": "127.0.0.2"}\'\n')
        answer = self.wait_status(self.order("bare"), "finished")
        self.assertEqual((answer["server"], answer["server_password"]), ("127.0.0.2", ""))
        self.assertEqual(self.home.read(self.path("params.txt")), b"{}")

    def test_cyrillic_params_env_and_args_under_the_c_locale(self):
        config = command_config(self.ssh.port, command=["./prog.sh", "Москва"])
        config["backend"]["env"]["REGION"] = "Регион-1"
        config["configurations"][0]["params"] = {"name": "Сервер"}
        self.home.write_config(config)
        self.program('printf "%s|%s|%s" "$1" "$REGION" "$BXPROVIDER_PARAMS" > out.txt\n'
                     'echo "progress: создаём ВМ" >&2\n' + RESULT)
        task_id = self.home.ok("order", "vm2", env={"LANG": "C", "LC_ALL": "C"})["task_id"]
        self.wait_status(task_id, "finished")
        got = self.home.read(self.path("out.txt")).decode("utf-8").split("|")
        self.assertEqual(got[:2], ["Москва", "Регион-1"])
        self.assertEqual(json.loads(got[2]), {"name": "Сервер"})
        self.assertIn("создаём ВМ", self.home.read(self.task_log(task_id)).decode("utf-8"))

    def test_failure_reports_the_last_stderr_line(self):
        self.program('''
echo "progress: creating the VM" >&2
echo "some output"
echo "Error: quota exceeded for account 42" >&2
exit 3
''')
        task_id = self.order()
        answer = self.wait_status(task_id, "error")
        self.assertEqual(answer["message"], "Error: quota exceeded for account 42")
        self.assertEqual(answer["server_password"], "")
        self.assertEqual(self.task(task_id)["data"]["exit_code"], 3)

    def test_exit_0_without_a_result_line_is_an_error(self):
        self.program('echo "all done"\n')
        answer = self.wait_status(self.order(), "error")
        self.assertIn("last line of output is not", answer["message"])

    def test_loopback_result_refused_by_default(self):
        self.home.write_config(command_config(self.ssh.port, allow_loopback=False))
        self.program(RESULT)
        answer = self.wait_status(self.order(), "error")
        self.assertIn("loopback", answer["message"])

    def test_missing_program(self):
        self.home.write_config(command_config(self.ssh.port, command=["./no-such-program"]))
        answer = self.wait_status(self.order(), "error")
        self.assertIn("cannot run", answer["message"])

    def test_progress_lines_become_the_message(self):
        self.program('echo "progress: creating the VM" >&2\n' + WAIT_FOR_GO +
                     'echo "progress: installing bitrix-env" >&2\n' + RESULT)
        task_id = self.order()
        wait_for(lambda: self.task(task_id)["message"] == "creating the VM",
                 what="the progress message")
        self.assertEqual(self.status(task_id)["message"], "creating the VM")
        self.go()
        answer = self.wait_status(task_id, "finished")
        log = self.home.read(self.home.log_path).decode("utf-8")
        self.assertIn('message="creating the VM"', log)
        self.assertIn("installing bitrix-env", self.home.read(self.task_log(task_id))
                      .decode("utf-8"))
        self.assertEqual(answer["status"], "finished")

    def test_waits_for_ssh_then_finishes(self):
        self.home.clock = self.path("sleeps")   # the worker's pauses between probes: recorded
        self.ssh.silent = True
        self.program(RESULT)
        task_id = self.order()
        answer = wait_for(lambda: self.status(task_id)["message"].startswith(
            "waiting for SSH on 127.0.0.1: no SSH banner within") and self.status(task_id),
            what="the SSH wait's reason")
        self.assertEqual((answer["status"], answer["server_password"]), ("in_progress", ""))
        self.ssh.silent = False
        answer = self.wait_status(task_id, "finished")
        self.assertEqual(answer["server_password"], "Pa55-w0rd-xyz")
        self.assertEqual(self.home.sleeps()[0], 1.0)      # a second before the next probe


class StopTest(CommandTestCase):
    def test_timeout_kills_the_process_group(self):
        self.home.write_config(command_config(self.ssh.port, timeout=0.3))
        self.program('sleep 300 &\necho $! > child\necho $$ > started\nsleep 300\n')
        task_id = self.order()
        answer = self.wait_status(task_id, "error")
        self.assertEqual(answer["message"], "timed out after 0.3 s")
        for name in ("started", "child"):
            pid = self.read_pid(name)
            wait_for(lambda: not pid_alive(pid), what="%s (pid %s) to be killed" % (name, pid))

    def test_dead_worker_is_detected(self):
        self.program('echo $$ > started\n' + WAIT_FOR_GO + RESULT)
        task_id, pid, worker = self.running_order()
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: not pid_alive(worker), what="the worker to die")
        answer = self.status(task_id)
        self.assertEqual(answer["status"], "error")
        self.assertIn("the worker stopped without a result", answer["message"])
        self.assertIn("the program was killed", answer["message"])
        wait_for(lambda: not pid_alive(pid), what="the orphaned program to be killed")
        self.assertEqual(self.status(task_id)["status"], "error")

    def test_worker_stopped_by_sigterm_kills_the_program(self):
        self.program('echo $$ > started\n' + WAIT_FOR_GO + RESULT)
        task_id, pid, worker = self.running_order()
        os.kill(worker, signal.SIGTERM)
        answer = self.wait_status(task_id, "error")
        self.assertEqual(answer["message"], "the worker was stopped by signal %d"
                         % signal.SIGTERM)
        wait_for(lambda: not pid_alive(pid), what="the program to be killed")


class CancelTest(CommandTestCase):
    """`task fail` on a running order stops its program, not only its task."""

    def test_task_fail_stops_the_program_and_its_children(self):
        self.program('sleep 300 &\necho $! > child\necho $$ > started\n' + WAIT_FOR_GO + RESULT)
        task_id, pid, worker = self.running_order()
        result = self.home.run("task", "fail", task_id, "--message", "wrong datacenter")
        self.assertEqual(result.code, 0, result)
        self.assertIn("task %s marked error: wrong datacenter" % task_id, result.text)
        self.assertIn("its worker (pid %d) is stopping the program" % worker, result.text)
        for name in ("started", "child"):
            gone = self.read_pid(name)
            wait_for(lambda: not pid_alive(gone), what="%s (pid %s) to be stopped" % (name, gone))
        wait_for(lambda: not os.path.exists(self.path("var/workers/%s.lock" % task_id)),
                 what="the worker to end")
        answer = self.status(task_id)
        self.assertEqual((answer["status"], answer["message"]), ("error", "wrong datacenter"))
        self.assertFalse(pid_alive(pid))

    def test_task_fail_of_a_finished_program_stops_nothing(self):
        self.program(RESULT)
        task_id = self.order()
        self.wait_status(task_id, "finished")
        result = self.home.run("task", "fail", task_id, "--message", "late")
        self.assertIn("N111", error_message(result, "task fail"))

    def test_a_worker_that_finds_its_task_failed_stops_the_program(self):
        # The race `task fail` can lose: the operator fails the task after the
        # worker read it and before it saved its pid. The fail is made here
        # in-process, holding the state lock, while the program already runs
        # and the worker waits for the lock to say "running".
        self.program('echo $$ > started\n' + WAIT_FOR_GO + RESULT)
        provider, task_id, worker = self.start_worker_by_hand()

        def fail_once_the_program_runs(state):
            wait_for(lambda: self.read_pid("started"), what="the program to start")
            state["tasks"][task_id].update(status="error", phase="failed", message="by hand")

        provider.store.update(fail_once_the_program_runs)
        pid = self.read_pid("started")
        wait_for(lambda: not pid_alive(pid), what="the program (pid %d) to be stopped" % pid)
        self.assertEqual(worker.wait(timeout=60), 0)
        task = self.task(task_id)
        self.assertEqual((task["status"], task["message"]), ("error", "by hand"))
        with open(self.task_log(task_id)) as handle:
            self.assertIn("the task was error meanwhile", handle.read())

    def test_a_stop_signal_during_a_save_lands_after_it(self):
        # SIGTERM while the worker waits for the state lock (to say "running")
        # stays pending until that transaction is over: the save completes,
        # then the worker stops the program and fails the task.
        self.program('echo $$ > started\n' + WAIT_FOR_GO + RESULT)
        provider, task_id, worker = self.start_worker_by_hand()

        term, usr1 = 1 << (signal.SIGTERM - 1), 1 << (signal.SIGUSR1 - 1)

        def signal_the_waiting_worker(state):
            wait_for(lambda: self.read_pid("started"), what="the program to start")
            # only the stop signals blocked: inside save(), not in Popen (which
            # blocks every signal around its fork on 3.10+)
            wait_for(lambda: signal_mask(worker.pid, "SigBlk") & (term | usr1) == term,
                     what="the worker to wait for the lock in its save")
            os.kill(worker.pid, signal.SIGTERM)
            wait_for(lambda: signal_mask(worker.pid, "ShdPnd") & term,
                     what="SIGTERM to be held pending by the worker")

        provider.store.update(signal_the_waiting_worker)
        pid = self.read_pid("started")
        wait_for(lambda: not pid_alive(pid), what="the program (pid %d) to be stopped" % pid)
        self.assertEqual(worker.wait(timeout=60), 0)
        task = self.task(task_id)
        self.assertEqual((task["status"], task["message"]),
                         ("error", "the worker was stopped by signal %d" % signal.SIGTERM))
        with open(os.path.join(self.home.dir, "log", "provider.log")) as handle:
            phases = [line.split(" phase=")[1].split()[0] for line in handle
                      if " task=%s " % task_id in line and " phase=" in line]
        self.assertEqual(phases, ['"running"', '"failed"'])


class BusyLockTest(CommandTestCase):
    """Saves that fail while the program runs (the state lock held too long)."""

    def test_data_a_failed_save_carried_is_saved_later_so_task_fail_still_works(self):
        # Regression: the first save (the worker's pid, the program's group)
        # failed and later saves carried only messages: `task fail` then could
        # not stop the program.
        self.program('echo $$ > started\n' + WAIT_FOR_GO + RESULT)
        held = []
        provider, task_id, worker = self.start_worker_by_hand(
            lock_wait=0.3, before_start=lambda: held.append(self.hold_the_state_lock()))
        lock = held[0]
        try:
            wait_for(self.log_says(task_id, "progress not saved, the program goes on"),
                     what="the worker's first save to fail")
        finally:
            os.close(lock)
        wait_for(lambda: self.task(task_id)["data"].get("worker_pid") == worker.pid,
                 what="the worker's data to be saved by a later try")
        result = self.home.run("task", "fail", task_id, "--message", "stop it")
        self.assertIn("is stopping the program", result.text)
        pid = self.read_pid("started")
        wait_for(lambda: not pid_alive(pid), what="the program (pid %d) to be stopped" % pid)

    def hold_the_state_lock(self):
        import fcntl
        var = os.path.join(self.home.dir, "var")
        if not os.path.isdir(var):
            os.mkdir(var, 0o700)
        lock = os.open(os.path.join(var, "provider.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        return lock

    def log_says(self, task_id, text):
        return lambda: os.path.exists(self.task_log(task_id)) and \
            text in open(self.task_log(task_id)).read()

    def test_a_progress_that_cannot_be_saved_does_not_stop_the_program(self):
        # Regression: the failed save was taken for a worker bug, and the
        # program was killed.
        self.home.write_config(dict(command_config(self.ssh.port), lock_wait=0.3))
        self.program('echo $$ > started\n'
                     'while [ ! -e go1 ]; do sleep 0.05; done\n'
                     'echo "progress: half way" >&2\n' + WAIT_FOR_GO + RESULT)
        task_id = self.order()
        wait_for(lambda: self.task(task_id)["phase"] == "running", what="the program to run")
        lock = self.hold_the_state_lock()
        try:
            open(self.path("go1"), "w").close()
            wait_for(self.log_says(task_id, "progress not saved, the program goes on"),
                     what="the worker to fail to save the progress")
        finally:
            os.close(lock)
        self.go()
        answer = self.wait_status(task_id, "finished")
        self.assertEqual(answer["server_password"], "Pa55-w0rd-xyz")

    def test_the_result_is_saved_once_the_lock_is_free_again(self):
        self.home.clock = self.path("sleeps")   # the pauses between its tries: recorded
        self.home.write_config(dict(command_config(self.ssh.port), lock_wait=0.3))
        self.program('echo $$ > started\n' + WAIT_FOR_GO + RESULT)
        task_id = self.order()
        wait_for(lambda: self.task(task_id)["phase"] == "running", what="the program to run")
        lock = self.hold_the_state_lock()
        try:
            self.go()
            wait_for(self.log_says(task_id, "the result could not be saved"),
                     what="the worker to fail to save the result")
            self.assertEqual(self.status(task_id)["status"], "in_progress")   # still its worker's
        finally:
            os.close(lock)
        answer = self.wait_status(task_id, "finished")
        self.assertEqual((answer["server"], answer["server_password"]),
                         ("127.0.0.1", "Pa55-w0rd-xyz"))
        self.assertEqual(self.home.sleeps()[0], 1.0)      # the first try again: after 1 s


def signal_mask(pid, field):
    """A signal set of /proc/PID/status: SigBlk (blocked by its main thread),
    ShdPnd (pending for the whole process)."""
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    return 0


class FollowConfigTest(CommandTestCase):
    """A worker waiting for SSH takes a config changed meanwhile."""

    def test_a_lowered_ready_timeout_ends_a_waiting_task(self):
        from helpers.support import closed_port
        port = closed_port()                # nobody listens: the wait goes on
        self.program('echo \'{"server": "127.0.0.1", "server_password": "pw"}\'\n')
        self.home.write_config(command_config(port, ready_timeout=3600))
        task_id = self.order()
        wait_for(lambda: self.task(task_id)["message"] ==
                 "waiting for SSH on 127.0.0.1: connection refused", timeout=60,
                 what="the SSH wait")
        self.home.write_config(command_config(port, ready_timeout=1))
        wait_for(lambda: self.task(task_id)["status"] != "in_progress", timeout=60,
                 what="the task to end")
        answer = self.status(task_id)
        self.assertEqual((answer["status"], answer["message"]), (
            "error", "no SSH within ready_timeout 1 s: 127.0.0.1: connection refused"))
        with open(self.task_log(task_id)) as handle:
            self.assertIn("the config changed: read again (changed: ready_timeout)",
                          handle.read())


class ValidationTest(HomeTestCase):
    def problems(self, config):
        self.home.write_config(config)
        return self.home.ok("help")["message"]

    def test_settings(self):
        config = command_config(22, command=[], timeout=0, env={"A": 1, "BXPROVIDER_X": "y"})
        message = self.problems(config)
        self.assertIn("$.backend.timeout: must be greater than 0", message)
        config = command_config(22, command=["", 3], env={"A": 1, "BXPROVIDER_X": "y"})
        message = self.problems(config)
        for text in ("$.backend.command[0]: must not be empty",
                     "$.backend.command[1]: must be a string",
                     "$.backend.env.A: must be a string",
                     "$.backend.env.BXPROVIDER_X: BXPROVIDER_* variables are set"):
            self.assertIn(text, message)
        config = command_config(22)
        del config["backend"]["command"]
        self.assertIn("$.backend: missing key 'command'", self.problems(config))

    def test_params_is_an_object_and_other_keys_are_typos(self):
        config = command_config(22)
        config["configurations"][0]["params"] = [1]
        config["configurations"][1]["cpu"] = 2
        message = self.problems(config)
        self.assertIn("$.configurations[0].params: must be an object", message)
        self.assertIn("$.configurations[1].cpu: unknown key", message)


class ExampleTest(CommandTestCase):
    def test_the_example_program_and_config(self):
        with open(os.path.join(ROOT, "examples", "command.conf"), "rb") as handle:
            config = json.loads(handle.read().decode("utf-8"))
        self.home.write_config(config)
        check = self.home.run("check")
        self.assertNotIn("config %s has" % self.home.config_path, check.text)
        self.assertIn("is valid: backend command", check.text)
        # Run it for real, pointed at the test's SSH banner and without delays.
        shutil.copytree(os.path.join(ROOT, "examples"), os.path.join(self.home.dir, "examples"))
        config["backend"].update(ssh_port=self.ssh.port, allow_loopback=True)
        config["backend"]["command"][0] = "examples/provision-example.sh"
        config["backend"]["env"]["EXAMPLE_SERVER"] = "127.0.0.1"
        config["backend"]["env"]["EXAMPLE_DELAY"] = "0"
        self.home.write_config(config)
        task_id = self.order(config["configurations"][0]["id"])
        answer = self.wait_status(task_id, "finished")
        self.assertEqual(answer["server"], "127.0.0.1")
        self.assertTrue(len(answer["server_password"]) >= 16)
        self.assertNotIn(answer["server_password"].encode("ascii"),
                         self.home.read(self.task_log(task_id)))


if __name__ == "__main__":
    unittest.main()
