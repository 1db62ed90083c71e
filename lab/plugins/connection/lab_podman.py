# dbstack.ha lab: run tasks in the lab's podman containers, fast.
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# containers.podman's podman connection costs a `podman exec` (about 0.35 s of
# podman start-up here) for every step of a task -- mkdir, copy, chmod, run,
# rm -- and a `podman mount` per task; it cannot pipeline (no exec -i). This
# plugin enters the container's namespaces with nsenter instead (a few ms),
# pipelines the module on stdin, and copies files through /proc/PID/root. The
# container's PID comes from `podman inspect` once and is cached, checked
# against the process's start time. Without root on the controller it falls
# back to `podman exec -i`. Lab and Molecule only: not part of the collection.
from __future__ import annotations

DOCUMENTATION = """
    name: lab_podman
    short_description: Run tasks in a local podman container through nsenter, with pipelining
    description:
        - Enters a running podman container's namespaces with nsenter (root) or C(podman exec -i), feeds modules on
          stdin (pipelining) and copies files through C(/proc/PID/root).
    extends_documentation_fragment:
        - connection_pipelining
    options:
      remote_addr:
        description: The name or ID of the container.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      podman_executable:
        description: Executable for podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
"""

import os
import shlex
import shutil
import subprocess
import tempfile

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()

# The environment a `podman exec` gets from the base image, not the controller's.
CONTAINER_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
                 "LANG=C.UTF-8", "container=podman"]
PID_CACHE = os.path.join(tempfile.gettempdir(), "dbstack-lab-podman-pids")


def _start_time(pid):
    """Field 22 of /proc/PID/stat: tells a reused PID from the container's."""
    with open("/proc/%s/stat" % pid, encoding="ascii") as stat:
        return stat.read().rsplit(")", 1)[1].split()[19]


class Connection(ConnectionBase):
    transport = "lab_podman"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Templated by the task executor before the plugin is made (as the stock plugin reads it).
        self._container = self._play_context.remote_addr
        self._pid = None

    def _podman(self, *args):
        cmd = [self.get_option("podman_executable")] + list(args)
        display.vvv("RUN %s" % cmd, host=self._container)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def _container_pid(self):
        cache = os.path.join(PID_CACHE, self._container)
        try:
            with open(cache, encoding="ascii") as handle:
                pid, started = handle.read().split()
            if _start_time(pid) == started:
                return pid
        except (OSError, ValueError, IndexError):
            pass
        rc, out, err = self._podman("inspect", "--type", "container", "--format", "{{.State.Pid}}", self._container)
        pid = to_native(out).strip()
        if rc != 0 or not pid.isdigit() or pid == "0":
            raise AnsibleConnectionFailure("container %s is not running: %s" % (self._container, to_native(err).strip()))
        os.makedirs(PID_CACHE, mode=0o700, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=PID_CACHE, delete=False, encoding="ascii") as handle:
            handle.write("%s %s\n" % (pid, _start_time(pid)))
        os.replace(handle.name, cache)
        return pid

    def _connect(self):
        super()._connect()
        if not self._connected:
            if os.geteuid() == 0 and shutil.which("nsenter"):
                self._pid = self._container_pid()
            self._connected = True
        return self

    def _refuse_frozen(self):
        """A paused (frozen) container does not answer, as a frozen host would not: fail like an unreachable one
        instead of hanging in a frozen process for good."""
        if not self._pid:
            return
        try:
            with open("/proc/%s/cgroup" % self._pid, encoding="ascii") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return
        for line in lines:
            _num, controllers, path = line.split(":", 2)
            if "freezer" in controllers.split(","):
                state = "/sys/fs/cgroup/freezer%s/freezer.state" % path
            elif controllers == "":
                state = "/sys/fs/cgroup%s/cgroup.freeze" % path
            else:
                continue
            try:
                with open(state, encoding="ascii") as handle:
                    value = handle.read().strip()
            except OSError:
                continue
            if value in ("FROZEN", "FREEZING", "1"):
                raise AnsibleConnectionFailure("container %s is paused (frozen): it does not answer" % self._container)

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        self._refuse_frozen()
        args = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        if self._pid:
            local = ["nsenter", "--target", self._pid, "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup",
                     "--root", "--wd", "--", "/usr/bin/env", "-i"] + CONTAINER_ENV + args
        else:
            local = [self.get_option("podman_executable"), "exec", "-i", self._container] + args
        display.vvv("EXEC %s" % local, host=self._container)
        proc = subprocess.run([to_bytes(a, errors="surrogate_or_strict") for a in local], input=in_data,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def _in_container(self, path):
        return "/proc/%s/root/%s" % (self._pid, path.lstrip("/"))

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        self._connect()
        self._refuse_frozen()
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self._container)
        if self._pid:
            shutil.copyfile(in_path, self._in_container(out_path))
            return
        rc, out, err = self._podman("cp", in_path, "%s:%s" % (self._container, out_path))
        if rc != 0:
            raise AnsibleError("cannot copy %s to %s in %s: %s" % (in_path, out_path, self._container, to_native(err)))

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        self._connect()
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self._container)
        if self._pid:
            shutil.copyfile(self._in_container(in_path), out_path)
            return
        rc, out, err = self._podman("cp", "%s:%s" % (self._container, in_path), out_path)
        if rc != 0:
            raise AnsibleError("cannot fetch %s from %s: %s" % (in_path, self._container, to_native(err)))

    def close(self):
        self._connected = False
