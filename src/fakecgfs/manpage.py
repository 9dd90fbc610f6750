"""The man page and the bash completion of ``fakecgfs``, generated from its argument parser,
so that neither can drift from the options the program takes.

    fakecgfs man > /usr/local/share/man/man1/fakecgfs.1
    fakecgfs completion bash > /etc/bash_completion.d/fakecgfs
"""

from __future__ import annotations

import argparse
import datetime
import shlex

from .mount_helper import IGNORED_OPTIONS
from .mount_options import helper_usage


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if a.option_strings and a.help != argparse.SUPPRESS]  # fmt: skip


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if not a.option_strings
            and not isinstance(a, argparse._SubParsersAction)]  # fmt: skip


# -- the man page ---------------------------------------------------------------------------


def roff(text: str) -> str:
    """Text safe in a roff paragraph: backslashes and dashes escaped, no line starting with
    a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line
                     for line in text.splitlines())  # fmt: skip


def _metavar(action: argparse.Action, default: str) -> str:
    """The name of an argument's value, as --help shows it (a tuple is one name per value)."""
    metavar = action.metavar or default
    return " ".join(metavar) if isinstance(metavar, tuple) else metavar


def _option_heading(action: argparse.Action) -> str:
    names = ", ".join(f"\\fB{roff(s)}\\fR" for s in action.option_strings)
    if action.nargs == 0:
        return names
    return f"{names} \\fI{roff(_metavar(action, action.dest.upper()))}\\fR"


def _usage(prog: str, parser: argparse.ArgumentParser) -> str:
    """The arguments of ``prog``'s usage line, on one line."""
    usage = " ".join(parser.format_usage().split())
    return usage.removeprefix("usage:").strip().removeprefix(prog).strip()


def man_page(parser: argparse.ArgumentParser, version: str) -> str:
    prog = parser.prog
    today = datetime.date.today().isoformat()
    lines = [
        f'.TH {prog.upper()} 1 "{today}" "{prog} {version}" "User Commands"',
        ".SH NAME",
        f"{prog} \\- {roff(parser.description or '')}",
        ".SH SYNOPSIS",
        f".B {prog}",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] ...",
        ".br",
        f".B {prog}",
        "\\fB\\-\\-version\\fR | \\fB\\-\\-help\\fR",
        ".SH COMMANDS",
        f"Each command has its own \\fB\\-\\-help\\fR: \\fB{prog} \\fICOMMAND\\fB \\-\\-help\\fR.",
    ]
    for name, sub in subcommands(parser).items():
        lines += [f'.SS "{prog} {name}"', f".B {prog} {name}", roff(_usage(sub.prog, sub)), ".PP",
                  roff(sub.description or _help_of(parser, name))]  # fmt: skip
        for action in _positionals(sub):
            if action.help:
                lines += [
                    ".TP",
                    f"\\fI{roff(_metavar(action, action.dest))}\\fR",
                    roff(action.help),
                ]
        for action in _options(sub):
            if action.dest == "help":
                continue
            lines += [".TP", _option_heading(action), roff(action.help or "")]
    lines += [
        ".SH MOUNT HELPER",
        "\\fBmount.fakecgfs\\fR \\fISOURCE\\fR \\fIDIR\\fR [\\fB\\-sfnv\\fR] [\\fB\\-o\\fR "
        "\\fIOPTIONS\\fR] is run by \\fBmount\\fR(8) for \\fB\\-t fuse.fakecgfs\\fR and fstab "
        f"lines once \\fB{prog} install\\-mount\\-helper\\fR has linked it into /sbin. Options: "
        + roff(helper_usage())
        + "; ignored: "
        + roff(", ".join(sorted(IGNORED_OPTIONS)))
        + ".",
        ".PP",
        ".nf",
        roff("mount -t fuse.fakecgfs fakecgfs /tmp/memory -o swap=64M,strict"),
        roff("fakecgfs  /tmp/memory  fuse.fakecgfs  swap=64M,noauto  0 0"),
        ".fi",
        ".SH ENVIRONMENT",
        ".TP",
        "\\fBNO_COLOR\\fR, \\fBTERM=dumb\\fR",
        "no colour (colour is used only on a terminal); with TERM=dumb, \\fBtop\\fR prints "
        "plain frames one after another.",
        ".SH SEE ALSO",
        "\\fBmount\\fR(8), \\fBfusermount\\fR(1), the kernel's "
        "Documentation/admin\\-guide/cgroup\\-v1/memory.rst",
    ]
    return "\n".join(lines) + "\n"


# -- bash completion ------------------------------------------------------------------------


def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion function: commands, then each command's options and the choices of
    an option that has them; paths otherwise (-o default)."""
    prog = parser.prog
    func = "_" + prog.replace("-", "_").replace(".", "_")
    subs = subcommands(parser)
    cases = []
    for name, sub in subs.items():
        words = [s for a in _options(sub) for s in a.option_strings]
        choices = [(s, list(a.choices)) for a in _options(sub) if a.choices
                   for s in a.option_strings]  # fmt: skip
        choice_cases = "".join(f"            {shlex.quote(s)}) COMPREPLY=($(compgen -W "
                               f"{shlex.quote(' '.join(map(str, c)))} -- \"$cur\")); return ;;\n"
                               for s, c in choices)  # fmt: skip
        cases.append(f"        {shlex.quote(name)})\n"
                     f"            case \"$prev\" in\n{choice_cases}"
                     f"            esac\n"
                     f"            opts={shlex.quote(' '.join(words))} ;;\n")  # fmt: skip
    top = " ".join(["--version", "--help", *subs])
    return f"""# bash completion for {prog}, generated by `{prog} completion bash`
{func}() {{
    local cur prev command opts i
    cur=${{COMP_WORDS[COMP_CWORD]}}
    prev=${{COMP_WORDS[COMP_CWORD-1]}}
    command=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in -*) ;; *) command=${{COMP_WORDS[i]}}; break ;; esac
    done
    if [ -z "$command" ]; then
        COMPREPLY=($(compgen -W {shlex.quote(top)} -- "$cur"))
        return
    fi
    opts=
    case "$command" in
{"".join(cases)}    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
}}
complete -o default -F {func} {prog}
"""
