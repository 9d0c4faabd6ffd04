#!/bin/sh
# /init of the VM test_memory_cgroup_v2_vm.py boots: a kernel with cgroup v2 and nothing else.
# It sets up what systemd gives a unit with Delegate=memory (its own cgroup, the memory
# controller available in it, only the service's processes inside), runs the probe there
# and powers the machine off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
echo +memory > /sys/fs/cgroup/cgroup.subtree_control
mkdir /sys/fs/cgroup/roomd.service
# A child shell joins the unit's cgroup and becomes the probe: nothing else is in there.
sh -c 'echo $$ > /sys/fs/cgroup/roomd.service/cgroup.procs && exec env PYTHONPATH=/probe/site \
    /usr/bin/python3 /probe/cgroup_v2_vm_probe.py' </dev/console >/dev/console 2>&1
echo o > /proc/sysrq-trigger
sleep 30
