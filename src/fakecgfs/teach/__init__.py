"""Teaching and observability tools, built on the filesystem and the control-file table.

``top`` (a live view read through the mount's files), ``plot`` (a trace as a PNG or SVG),
``explain`` and ``reference`` (docs/files.md from the control-file table), ``tracedoc``
(docs/trace.md from the trace schema); ``commands`` adds them to the ``fakecgfs`` command.
"""
