#!/usr/bin/env python3
"""Checks the #include structure of src/: no include cycles and no upward includes between layers.

usage: tools/check_includes.py [SRC_DIR]   (default: the src/ next to this script's folder)

Only `#include "..."` lines that resolve to a file under SRC_DIR count (public headers in
include/qvl/ and third-party headers are outside the graph). A header and the source file of
the same name (foo.h, foo.cpp) form one component, so "a.cpp includes b.h while b.h includes
a.h" is a cycle too: that is the circle that makes two modules impossible to build or test
apart, even though the preprocessor never loops.

Layers, low to high; a file may include its own layer and lower ones only:
  core < formats, kernels, jinja, image, video < tokenizer < model (model/text, model/vision) <
  api < engine < server < devtools
(api implements Model, Tokenizer, Processor and Generator; the engine builds on their internals;
the HTTP server (qvl serve) on the engine;
the developer tools (golden dump, quantize, synthetic checkpoints) on everything.)
Exit status 0 when clean, 1 naming every cycle and every violating edge, 2 on usage errors.
"""

import os
import re
import sys

LAYERS = [
    ["core"],
    ["formats", "kernels", "jinja", "image", "video"],
    ["tokenizer"],
    ["model"],
    ["api"],
    ["engine"],
    ["server"],
    ["devtools"],
]
LAYER_OF = {top: rank for rank, tops in enumerate(LAYERS) for top in tops}
SOURCE_EXTENSIONS = (".h", ".hpp", ".cpp", ".cc", ".c", ".inl")
INCLUDE_LINE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def source_files(src_dir):
    for root, dirs, files in os.walk(src_dir):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(SOURCE_EXTENSIONS):
                yield os.path.relpath(os.path.join(root, name), src_dir).replace(os.sep, "/")


def resolve(src_dir, includer, target):
    """The src-relative path `#include "target"` in `includer` names, or None if outside src/."""
    for candidate in (target, os.path.join(os.path.dirname(includer), target)):
        candidate = os.path.normpath(candidate).replace(os.sep, "/")
        if not candidate.startswith("../") and os.path.isfile(os.path.join(src_dir, candidate)):
            return candidate
    return None


def include_edges(src_dir):
    """{file: [(included file, line number)]} for every src file."""
    edges = {}
    for path in source_files(src_dir):
        edges[path] = []
        with open(os.path.join(src_dir, path), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                match = INCLUDE_LINE.match(line)
                if match:
                    target = resolve(src_dir, path, match.group(1))
                    if target is not None:
                        edges[path].append((target, number))
    return edges


def layer_of(path):
    top = path.split("/", 1)[0]
    return LAYER_OF.get(top)


def layer_violations(edges):
    problems = []
    for path, includes in edges.items():
        for target, number in includes:
            low, high = layer_of(path), layer_of(target)
            if low is not None and high is not None and high > low:
                problems.append(f"layer violation: src/{path}:{number} includes src/{target} "
                                f"({path.split('/')[0]} must not depend on {target.split('/')[0]})")
    return problems


def component(path):
    return os.path.splitext(path)[0]


def component_cycles(edges):
    """Strongly connected components with more than one member (Tarjan), each as a file-level path."""
    graph = {}
    witness = {}  # (component, component) -> (includer file, line, included file)
    for path, includes in edges.items():
        graph.setdefault(component(path), set())
        for target, number in includes:
            a, b = component(path), component(target)
            if a != b:
                graph[a].add(b)
                witness.setdefault((a, b), (path, number, target))
            graph.setdefault(b, set())

    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        # Iterative Tarjan: src/ is small, but recursion limits are not worth worrying about.
        work = [(node, iter(sorted(graph[node])))]
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[current] = min(low[current], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == current:
                        break
                if len(members) > 1:
                    sccs.append(set(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)

    problems = []
    for members in sccs:
        cycle = shortest_cycle(graph, members)
        steps = []
        for a, b in zip(cycle, cycle[1:] + cycle[:1]):
            path, number, target = witness[(a, b)]
            steps.append(f"src/{path}:{number} includes src/{target}")
        message = "include cycle: " + "; ".join(steps)
        others = sorted(members - set(cycle))
        if others:
            message += " (tangled with it: " + ", ".join(f"src/{m}.*" for m in others) + ")"
        problems.append(message)
    return problems


def shortest_cycle(graph, members):
    """A shortest cycle through the alphabetically first member, staying inside `members`."""
    start = min(members)
    previous = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    cycle = [node]
                    while previous[cycle[-1]] is not None:
                        cycle.append(previous[cycle[-1]])
                    return list(reversed(cycle))
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]  # unreachable for a strongly connected set of two or more


def main(argv):
    if len(argv) > 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    default = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    src_dir = os.path.abspath(argv[1] if len(argv) == 2 else default)
    if not os.path.isdir(src_dir):
        print(f"check_includes: '{src_dir}' is not a directory", file=sys.stderr)
        return 2
    edges = include_edges(src_dir)
    unknown = sorted({p.split("/")[0] for p in edges if "/" in p and layer_of(p) is None})
    problems = component_cycles(edges) + layer_violations(edges)
    problems += [f"unknown layer: src/{top}/ is in no layer (add it to LAYERS in {argv[0]})" for top in unknown]
    for problem in problems:
        print(problem)
    count = sum(len(v) for v in edges.values())
    print(f"check_includes: {len(edges)} files, {count} includes, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
