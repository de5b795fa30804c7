"""``cnndesk cache``: the on-disk caches' sizes against their shared cap, and clearing them.

``cnndesk cache info [--format table|json]`` and ``cnndesk cache clear [--what embeddings|thumbnails|exports|all]``.
Exit codes: 0 done; 1 a cache could not be cleared (e.g. permissions); 2 usage errors.
"""

from __future__ import annotations

from cnndesk.cli.common import EXIT_OK, EXIT_SOME_FAILED, fail, say, say_json

HELP = "show the caches' sizes or clear them"
WHAT = ("embeddings", "thumbnails", "exports", "all")


def add_arguments(p) -> None:
    p.description = ("The embedding, thumbnail and export caches share one size cap (default 2 GB, "
                     "CNNDESK_CACHE_LIMIT_MB changes it); the least recently used entries go first.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    sub.required = True
    i = sub.add_parser("info", help="size of each cache and the cap")
    i.add_argument("--format", "-f", choices=("table", "json"), default="table")
    c = sub.add_parser("clear", help="remove cached entries (entries in use are kept)")
    c.add_argument("--what", choices=WHAT, default="all", help="which cache (default: all)")
    c.add_argument("--format", "-f", choices=("table", "json"), default="table")


def run(args) -> int:
    from cnndesk.core.common import cache_budget as cb
    from cnndesk.core.common.safeio import path_text

    if args.action == "info":
        caches = cb.info()
        total = sum(c.size for c in caches)
        limit = cb.limit_bytes()
        if args.format == "json":
            say_json({"caches": [{**c.as_dict(), "folder": path_text(c.folder)} for c in caches],
                      "total_bytes": total, "limit_bytes": limit}, indent=2)
            return EXIT_OK
        rows = [("CACHE", "SIZE", "ENTRIES", "FOLDER")]
        rows += [(c.name, cb.human_size(c.size), str(c.entries), path_text(c.folder)) for c in caches]
        rows.append(("total", cb.human_size(total), "", f"cap {cb.human_size(limit)}" if limit else "no cap"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        say("\n".join("  ".join(x.ljust(widths[i]) for i, x in enumerate(r)).rstrip() for r in rows))
        return EXIT_OK
    try:
        res = cb.clear(args.what)
    except OSError as exc:
        from cnndesk.core.common.safeio import describe_oserror

        return fail(f"cnndesk: could not clear the cache: {describe_oserror(exc)}", EXIT_SOME_FAILED)
    if args.format == "json":
        say_json({"what": args.what, "freed_bytes": res.freed, "removed": res.removed,
                  "kept_in_use": res.kept_in_use})
    else:
        kept = f"; {res.kept_in_use} in use kept" if res.kept_in_use else ""
        say(f"cleared {args.what}: {res.removed} entries, {cb.human_size(res.freed)} freed{kept}")
    return EXIT_OK
