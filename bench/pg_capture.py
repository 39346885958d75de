#!/usr/bin/env python3
"""The statements a client sent Postgres, read from a server log with log_statement=all,
turned into a pgbench script (the same SQL, the same parameters) or an EXPLAIN script.

  pg_capture.py statements            < server log   -> JSON [{pid, sql, params}]
  pg_capture.py pgbench SCRIPT ARGS   < JSON         -> pgbench script; ARGS: -D options, NUL-separated
  pg_capture.py explain               < JSON         -> psql script: PREPARE, 5 EXECUTEs, EXPLAIN EXECUTE
  pg_capture.py summary               < JSON         -> one line per statement (first 160 characters)

Log format: PostgreSQL 15's default log_line_prefix '%m [%p] ' (docs 20.8.3); an
extended-protocol statement is logged as "LOG:  execute <name>: SQL" followed by
"DETAIL:  parameters: $1 = '...', ..." (a NULL parameter as NULL), a simple-protocol one
as "LOG:  statement: SQL"; continuation lines start with a tab.
"""
import json
import re
import sys

HEAD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(\d+)\] (\w+):  (.*)$")
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
SKIP = re.compile(r"^\s*(ALTER SYSTEM|SELECT pg_reload_conf\(\))", re.I)


def records(lines):
    rec = None
    for line in lines:
        line = line.rstrip("\n")
        m = HEAD.match(line)
        if m:
            if rec:
                yield rec
            rec = [m.group(1), m.group(2), m.group(3)]
        elif rec is not None and line.startswith("\t"):
            rec[2] += "\n" + line[1:]
    if rec:
        yield rec


def statements(lines):
    out, last = [], {}
    for pid, level, msg in records(lines):
        if level == "LOG":
            m = re.match(r"(?:execute [^:]+|statement): (.*)$", msg, re.S)
            if not m or SKIP.match(m.group(1)):
                continue
            st = {"pid": pid, "sql": m.group(1), "params": []}
            out.append(st)
            last[pid] = st
        elif level == "DETAIL" and msg.startswith("parameters: ") and pid in last:
            ps = {}
            for n, v in PARAM.findall(msg):
                ps[int(n)] = None if v == "NULL" else v[1:-1].replace("''", "'")
            last[pid]["params"] = [ps.get(i) for i in range(1, max(ps, default=0) + 1)]
    return out


def subst(sql, fn):
    """Replace $n outside string literals and quoted identifiers by fn(n)."""
    out, i, quote = [], 0, None
    while i < len(sql):
        c = sql[i]
        if quote:
            out.append(c)
            if c == quote:
                quote = None
            i += 1
        elif c in "'\"":
            quote = c
            out.append(c)
            i += 1
        elif c == "$" and i + 1 < len(sql) and sql[i + 1].isdigit():
            j = i + 1
            while j < len(sql) and sql[j].isdigit():
                j += 1
            out.append(fn(int(sql[i + 1:j])))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def literal(v):
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


def pgbench(sts, script, args):
    lines, defs = [], []
    for k, st in enumerate(sts, 1):
        def var(n, k=k, st=st):
            v = st["params"][n - 1] if n - 1 < len(st["params"]) else None
            if v is None:
                return "NULL"
            defs.extend(["-D", f"q{k}p{n}={v}"])
            return f":q{k}p{n}"
        sql = subst(st["sql"], var).strip().rstrip(";")
        # pgbench reads a line starting with a backslash as a meta-command
        lines.append("\n".join(" " + l if l.startswith("\\") else l for l in sql.split("\n")) + ";")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(args, "w") as f:
        f.write("".join(d + "\0" for d in defs))


def explain(sts):
    out = ["\\set ON_ERROR_STOP 1", "\\pset pager off"]
    for k, st in enumerate(sts, 1):
        if not re.match(r"\s*(SELECT|WITH)", st["sql"], re.I):
            continue
        args = ", ".join(literal(v) for v in st["params"])
        call = f"EXECUTE q{k}({args})" if st["params"] else f"EXECUTE q{k}"
        out.append(f"PREPARE q{k} AS {st['sql'].strip().rstrip(';')};")
        # five executions first: the plan the gateway's prepared statement settles on
        # (custom or generic, docs: PREPARE, "Notes")
        out += ["\\o /dev/null"] + [call + ";"] * 5 + ["\\o"]
        out.append(f"\\echo '-- statement {k}'")
        out.append(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF, SUMMARY OFF) {call};")
    return "\n".join(out) + "\n"


def main():
    mode = sys.argv[1]
    if mode == "statements":
        json.dump(statements(sys.stdin), sys.stdout)
    elif mode == "pgbench":
        pgbench(json.load(sys.stdin), sys.argv[2], sys.argv[3])
    elif mode == "explain":
        sys.stdout.write(explain(json.load(sys.stdin)))
    elif mode == "summary":
        for k, st in enumerate(json.load(sys.stdin), 1):
            print(f"  {k}. " + " ".join(st["sql"].split())[:160])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
