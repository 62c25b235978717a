# -*- coding: utf-8 -*-
"""What the test modules (tests/test_*.py) share; none of it is a test.

    support         a provider home in a temp folder (Home, HomeTestCase), the
                    plugin run the cheap way or in-process (call_main, load_module),
                    the run's temp folder (TestRoot), the caller's parsing rules
    launch          run as a script (python3 -S tests/helpers/launch.py): the plugin's
                    code compiled once per run, and the fork server support.Home uses
    cloudbase       a home whose backend points at a fake cloud API: CloudHome, and
                    CloudTests, which every cloud backend's test module runs
    fakecloud       fake Hetzner and Timeweb APIs, an SSH banner server, and the
                    fake API core the other fakes build on
    fake_openstack  a fake OpenStack (Keystone, Nova, Neutron, Glance)
    fake_yandex     a fake Yandex Cloud (Compute, VPC, operations, IAM, metadata)
    sshd            a real sshd on 127.0.0.1 and a stand-in for the caller's ssh_keycopy
    robust_support  the backends the test_robust_* suites run against (BACKEND_CASES)

The test modules import them as `from helpers.support import Home` (tests/ is on
sys.path: tests/run.py puts it there, and so does `python3 -m unittest discover -s
tests`); the helpers import each other relatively (`from .support import ...`).
"""
