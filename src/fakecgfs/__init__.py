"""fakecgfs: a FUSE imitation of the Linux cgroup v1 memory controller."""

__version__ = "0.1.0"
