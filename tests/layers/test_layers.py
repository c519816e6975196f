#!/usr/bin/python3
"""The layering of src/, checked on the object files (nm): which .c file
calls functions (or uses data) of which other one.

1. No file-level cycles: the calls run one way (ARCHITECTURE.md: worker
   -> conn -> {xprt_plain, h1 | echo} -> http -> serve -> fcache, file,
   ... -> resp). A cycle shows as the strongly connected component it
   makes, with the symbols behind each edge.
2. Nothing above the transport touches a client socket: the connection
   core and the protocols import no read, write, send, recv or shutdown
   function (xprt_plain.c and xprt_tls.c alone do, and conn_proxy.c,
   which reads a PROXY header before the transport starts).

Run by ``make check`` (PORTER_BIN locates the build's src/ directory), or:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/layers/test_layers.py
"""

import glob
import os
import subprocess
import sys
import unittest

# Cycles tolerated, each a sorted list of file names (without .c): none.
# The process side's ctl.c <-> master.c went with its ctl handlers, the
# connection side's with conn.c, h1.c and resp.c, limit_ban.c <->
# limit_table.c when limit_unban() moved up into limit.c.
KNOWN_CYCLES = []

# conn_proxy.c is not here: the PROXY header is read (recv with
# MSG_PEEK, then consumed) before any transport exists on the socket.
ABOVE_TRANSPORT = ("conn", "h1", "h2", "h2_out", "h2_stream", "h2_mem",
                   "h2_req", "h2_data", "echo", "http", "https", "acme",
                   "status", "serve", "resp", "climit")
SOCKET_IO = ("read", "readv", "recv", "recvfrom", "recvmsg", "write", "writev",
             "send", "sendto", "sendmsg", "sendfile", "sendfile64", "splice",
             "shutdown")


def objdir():
    b = os.environ.get("PORTER_BIN")
    if b:
        return os.path.dirname(os.path.abspath(b))
    return os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "..", "build", "src")


def symbols(obj):
    """(defined, undefined) global symbol names of one object file."""
    out = subprocess.run(["nm", "-P", obj], check=True, capture_output=True,
                         text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind.isupper():
            defined.add(name)
    return defined, undefined


def graph():
    objs = sorted(glob.glob(os.path.join(objdir(), "*.o")))
    files = {}
    for o in objs:
        name = os.path.basename(o)[:-2]
        # automake may prefix objects of a target (porter-main.o)
        name = name.split("-")[-1]
        files[name] = symbols(o)
    owner = {}
    for f, (d, _) in files.items():
        for s in d:
            owner[s] = f
    edges = {f: {} for f in files}
    for f, (_, u) in files.items():
        for s in u:
            g = owner.get(s)
            if g is not None and g != f:
                edges[f].setdefault(g, set()).add(s)
    return files, edges


def sccs(edges):
    """Tarjan's strongly connected components, each a sorted list."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


class Layers(unittest.TestCase):

    def setUp(self):
        self.files, self.edges = graph()
        if "conn" not in self.files:
            self.skipTest("no object files in %s (build first)" % objdir())

    def test_no_cycles(self):
        bad = [c for c in sccs(self.edges) if len(c) > 1 and c not in KNOWN_CYCLES]
        lines = []
        for comp in bad:
            for f in comp:
                for g, syms in sorted(self.edges[f].items()):
                    if g in comp:
                        lines.append("  %s.c -> %s.c: %s" % (f, g, ", ".join(sorted(syms))))
        self.assertEqual(bad, [], "file-level cycles:\n" + "\n".join(lines))

    def test_no_socket_io_above_transport(self):
        for f in ABOVE_TRANSPORT:
            if f not in self.files:
                continue
            used = sorted(set(SOCKET_IO) & self.files[f][1])
            self.assertEqual(used, [], "%s.c calls %s itself, not through its "
                             "transport (xprt.h)" % (f, ", ".join(used)))

    def test_transport_does(self):
        # The check above means something only if the names are right.
        self.assertTrue({"read", "sendmsg", "sendfile", "shutdown"} <=
                        self.files["xprt_plain"][1] |
                        {s[:-2] for s in self.files["xprt_plain"][1] if s.endswith("64")})


if __name__ == "__main__":
    unittest.main()
