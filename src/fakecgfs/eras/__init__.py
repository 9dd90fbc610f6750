"""Other eras of the memory controller, each as its own rules and its own control-file table.

The default mount is kernel 6.18's v1 controller with the 2008 RFC repaired (``controller/``,
``cgroupfs/cftypes.py``).  An era here is a whole alternative, chosen once at mount time
(``fakecgfs mount --era``), never a flag inside the modern code.
"""

ERAS = ("6.18", "rfc-2008")
"""Every value of ``MountOptions.era``; the first is the default."""
