{
  "variables": { "werror%": "<!(echo ${CODEX_ESCALATE_WERROR:-0})" },
  "targets": [
    {
      "target_name": "codex_native",
      "sources": [
        "native/common.c",
        "native/fdpass.c",
        "native/poller.c",
        "native/spawn.c",
        "native/proc.c",
        "native/tty.c",
        "native/seccomp-notify.c",
        "native/fast-path.c"
      ],
      "cflags!": ["-O3"],
      "cflags": ["-Wall", "-Wextra", "-O2", "-std=gnu11"],
      "conditions": [["werror==1", { "cflags": ["-Werror"] }]]
    }
  ]
}
