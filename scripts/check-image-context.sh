#!/usr/bin/env bash
# Proves deploy/Dockerfile's Swift steps without a Docker engine:
#  1. lays out, in an empty temporary folder, exactly what the build stage
#     would hold: the files its COPY/ADD instructions take from the build
#     context (the repository root), after .dockerignore (or
#     <Dockerfile>.dockerignore, which BuildKit prefers) has removed its
#     patterns; a COPY whose source the context lacks fails as docker would;
#  2. replays the stage's SwiftPM steps there, in order: `swift package
#     resolve` where the Dockerfile resolves, and `swift package describe
#     --type json` (it loads every target, tests included, as `swift build`
#     does before compiling) where it builds, and once more at the end;
#  3. checks that the Swift image the build stage starts FROM
#     (ARG SWIFT_VERSION) is at least the highest `swift-tools-version`
#     declared by the root Package.swift and by every resolved dependency
#     (checkouts/*/Package.swift after the resolve).
# Nothing is compiled. Usage: scripts/check-image-context.sh [Dockerfile]
# (default deploy/Dockerfile, context: the repository root). KEEP=1 keeps the
# temporary folder for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v swift >/dev/null || { echo "check-image-context: swift is not on PATH" >&2; exit 2; }
PYTHONUNBUFFERED=1 exec python3 - "${1:-deploy/Dockerfile}" <<'PY'
import glob, json, os, re, shlex, shutil, subprocess, sys, tempfile

dockerfile = sys.argv[1]
context = os.path.abspath(".")
failures = []


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    failures.append(message)


# --- .dockerignore, with the semantics of moby/patternmatcher -------------
def ignore_file():
    specific = dockerfile + ".dockerignore"  # BuildKit prefers this one
    return specific if os.path.exists(specific) else os.path.join(context, ".dockerignore")


def compile_pattern(pattern):
    regex, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
                if i + 1 < len(pattern) and pattern[i + 1] == "/":
                    i += 1
                regex += ".*" if i + 1 >= len(pattern) else "(.*/)?"
            else:
                regex += "[^/]*"
        elif ch == "?":
            regex += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        elif ch in "[]":
            regex += ch
        else:
            regex += re.escape(ch)
        i += 1
    return re.compile(regex + "$")


def read_patterns(path):
    patterns = []
    if not os.path.exists(path):
        return patterns
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        line = os.path.normpath(line)
        if len(line) > 1 and line.startswith("/"):
            line = line.lstrip("/")
        patterns.append((exclusion, compile_pattern(line), line))
    return patterns


PATTERNS = read_patterns(ignore_file())


def ignored(rel):
    """MatchesOrParentMatches: the last pattern matching the path or a parent wins."""
    parts = rel.split("/")
    matched = False
    for exclusion, regex, _ in PATTERNS:
        if exclusion != matched:
            continue
        hit = bool(regex.match(rel)) or any(regex.match("/".join(parts[: n + 1])) for n in range(len(parts) - 1))
        if hit:
            matched = not exclusion
    return matched


def context_files(rel_root):
    """The files under rel_root (a file or folder of the context) that the context holds."""
    top = os.path.join(context, rel_root)
    if os.path.isfile(top) or os.path.islink(top):
        return [rel_root] if not ignored(rel_root) else []
    found = []
    for folder, dirs, files in os.walk(top):
        relfolder = os.path.relpath(folder, context)
        dirs[:] = [d for d in dirs if not ignored(os.path.normpath(os.path.join(relfolder, d))) or any_exception()]
        for name in files:
            rel = os.path.normpath(os.path.join(relfolder, name))
            if not ignored(rel):
                found.append(rel)
    return found


def any_exception():
    return any(exclusion for exclusion, _, _ in PATTERNS)


# --- the Dockerfile ----------------------------------------------------------
def instructions(path):
    logical, current = [], ""
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not current and (line.strip().startswith("#") or not line.strip()):
            continue
        if current and line.strip().startswith("#"):
            continue  # comment lines inside a continuation are dropped
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        logical.append(current.strip())
        current = ""
    if current.strip():
        logical.append(current.strip())
    for text in logical:
        keyword, _, rest = text.partition(" ")
        yield keyword.upper(), rest.strip()


def substitute(text, args):
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), ""), text)


def parse_copy(rest):
    flags, words = {}, None
    tokens = rest
    while tokens.startswith("--"):
        flag, _, tokens = tokens.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        tokens = tokens.strip()
    if tokens.startswith("["):
        words = json.loads(tokens)
    else:
        words = shlex.split(tokens)
    return flags, words[:-1], words[-1]


def version_tuple(text):
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3]) + (0,) * (3 - len(re.findall(r"\d+", text)[:3]))


def tools_version(manifest):
    first = open(manifest, encoding="utf-8").readline()
    match = re.match(r"//\s*swift-tools-version\s*:\s*([0-9][0-9.]*)", first)
    return match.group(1) if match else None


work = tempfile.mkdtemp(prefix="image-context.")
scratch = os.path.join(work, "scratch")
try:
    global_args, stages, stage = {}, [], None
    for keyword, rest in instructions(dockerfile):
        if keyword == "ARG" and stage is None:
            name, _, value = rest.partition("=")
            global_args[name.strip()] = value.strip().strip('"')
        elif keyword == "FROM":
            words = rest.split()
            stage = {"from": substitute(words[0], global_args), "steps": []}
            stages.append(stage)
        elif stage is not None:
            stage["steps"].append((keyword, rest))

    swift_stages = [s for s in stages if any(k == "RUN" and re.search(r"\bswift\b", r) for k, r in s["steps"])]
    if not swift_stages:
        fail(f"{dockerfile}: no stage runs swift")
    for index, stage in enumerate(swift_stages):
        print(f"build stage FROM {stage['from']}")
        root = os.path.join(work, f"stage{index}")
        workdir = "/"
        described = False

        outputs = {}

        def run(argv, cwd):
            print("  $ " + " ".join(argv), flush=True)
            done = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if done.returncode != 0:
                return done.stdout + done.stderr
            outputs[argv[-1] if argv[-1] != "json" else "describe"] = done.stdout
            return None

        def check_products(run_line):
            """Every `--product NAME` the stage builds is an executable product of the package."""
            try:
                products = {p["name"]: p for p in json.loads(outputs.get("describe", "{}")).get("products", [])}
            except json.JSONDecodeError as error:
                fail(f"`swift package describe --type json` printed no JSON: {error}")
                return
            for name in re.findall(r"--product[= ]+([A-Za-z0-9_.-]+)", run_line):
                kind = products.get(name, {}).get("type", {})
                if name not in products:
                    fail(f"the Dockerfile builds --product {name}, which Package.swift does not declare")
                elif "executable" not in kind:
                    fail(f"the Dockerfile builds --product {name}, which is not an executable product")
                else:
                    print(f"  product {name}: executable")

        for keyword, rest in stage["steps"]:
            here = os.path.join(root, workdir.lstrip("/"))
            if keyword == "WORKDIR":
                workdir = os.path.normpath(os.path.join(workdir, rest))
                os.makedirs(os.path.join(root, workdir.lstrip("/")), exist_ok=True)
            elif keyword in ("COPY", "ADD"):
                flags, sources, dest = parse_copy(rest)
                if "from" in flags:
                    continue
                target = os.path.join(root, os.path.normpath(os.path.join(workdir, dest)).lstrip("/"))
                into_folder = dest.endswith("/") or len(sources) > 1 or os.path.isdir(target)
                for source in sources:
                    matches = sorted(os.path.relpath(p, context) for p in glob.glob(os.path.join(context, source)))
                    files = [f for m in matches for f in context_files(m)]
                    if not files:
                        fail(f"{keyword} {source}: not in the build context "
                             f"(missing, or excluded by {os.path.relpath(ignore_file(), context)})")
                        continue
                    print(f"  {keyword} {source} -> {dest} ({len(files)} files)")
                    for match in matches:
                        for rel in context_files(match):
                            if os.path.isdir(os.path.join(context, match)):
                                out = os.path.join(target, os.path.relpath(rel, match))
                            elif into_folder:
                                out = os.path.join(target, os.path.basename(rel))
                            else:
                                out = target
                            os.makedirs(os.path.dirname(out), exist_ok=True)
                            shutil.copy2(os.path.join(context, rel), out)
            elif keyword == "RUN" and re.search(r"swift\s+package\s+resolve", rest):
                os.makedirs(here, exist_ok=True)
                error = run(["swift", "package", "--scratch-path", scratch, "resolve"], here)
                if error:
                    fail(f"`swift package resolve` fails in the build stage:\n{error.strip()}")
            elif keyword == "RUN" and re.search(r"swift\s+build", rest):
                os.makedirs(here, exist_ok=True)
                error = run(["swift", "package", "--scratch-path", scratch, "describe", "--type", "json"], here)
                described = True
                if error:
                    fail(f"the build stage's `swift build` would fail: its context lacks what Package.swift needs:\n"
                         f"{error.strip()}")
                else:
                    check_products(rest)
        here = os.path.join(root, workdir.lstrip("/"))
        if not described:
            error = run(["swift", "package", "--scratch-path", scratch, "describe", "--type", "json"], here)
            if error:
                fail(f"`swift package describe` fails in the build stage's layout:\n{error.strip()}")

        # Swift version of the build image against every swift-tools-version.
        image = re.match(r"(?:docker\.io/)?(?:library/)?swift:([0-9][0-9.]*)", stage["from"])
        if not image:
            fail(f"cannot tell the Swift version of the build image {stage['from']!r} "
                 "(expected swift:<version>-..., set by ARG SWIFT_VERSION)")
            continue
        swift_version = image.group(1)
        if not os.path.isdir(os.path.join(scratch, "checkouts")):
            print("  (no dependency resolved yet: resolving to read their swift-tools-version)")
            error = run(["swift", "package", "--scratch-path", scratch, "resolve"], here)
            if error:
                fail(f"`swift package resolve` fails:\n{error.strip()}")
        manifests = {"(root) Package.swift": os.path.join(here, "Package.swift")}
        for manifest in sorted(glob.glob(os.path.join(scratch, "checkouts", "*", "Package.swift"))):
            manifests[os.path.basename(os.path.dirname(manifest))] = manifest
        declared = {}
        for name, manifest in manifests.items():
            if os.path.exists(manifest):
                version = tools_version(manifest)
                if version is None:
                    fail(f"{name}: no swift-tools-version line")
                else:
                    declared[name] = version
        if len(declared) < 2:
            fail("no resolved dependency to compare SWIFT_VERSION with")
            continue
        highest = max(declared.values(), key=version_tuple)
        too_new = sorted(f"{n} ({v})" for n, v in declared.items() if version_tuple(v) > version_tuple(swift_version))
        print(f"  Swift in the build image: {swift_version}; highest swift-tools-version among "
              f"{len(declared) - 1} resolved dependencies and the root: {highest}")
        if too_new:
            fail(f"{dockerfile} builds with Swift {swift_version} (ARG SWIFT_VERSION / FROM {stage['from']}), "
                 f"older than the swift-tools-version these packages declare: {', '.join(too_new)}. "
                 f"Raise SWIFT_VERSION to at least {highest}.")
finally:
    if os.environ.get("KEEP"):
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)

if failures:
    print(f"check-image-context: {len(failures)} problem(s) with {dockerfile}", file=sys.stderr)
    sys.exit(1)
print(f"check-image-context: {dockerfile} context and Swift version OK")
PY
