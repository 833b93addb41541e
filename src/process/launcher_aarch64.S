// The execbridge launcher for aarch64 Linux: `launcher PATH ARGV0 ARGS...`
// calls setsid() and then execve(PATH, [ARGV0, ARGS...], envp), so the
// program runs in a new session (its own process group) under the same pid.
// A file that is not a binary (ENOEXEC) runs under /bin/sh, as execvp does.
// On failure it names the program on stderr and exits 127 (not found) or 126.
// A failed setsid() is a failure too: the child must not stay in our group.
//
// src/process/launcher.ts embeds the bytes of this code; a test assembles this
// file (when `aarch64-linux-gnu-as` is installed) and checks that they are the same.
.globl _start
_start:
    mov x8, #157                // setsid()
    svc #0
    tbnz x0, #63, fail          // failed: don't run the program in the caller's group
    ldr x0, [sp, #16]           // PATH = argv[1]
    add x1, sp, #24             // argv = &argv[2]
    ldr x2, [sp]                // argc
    add x2, sp, x2, lsl #3
    add x2, x2, #16             // envp = &argv[argc + 1]
    mov x8, #221                // execve(PATH, argv, envp)
    svc #0
    cmn x0, #8                  // -ENOEXEC: a script without #!
    b.ne fail
    ldr x3, [sp]
    cmp x3, #3                  // needs an argv[2] to overwrite
    b.lo fail
    ldr x0, [sp, #16]
    str x0, [sp, #24]           // argv[2] = PATH: sh gets [PATH, PATH, ARGS...]
    add x1, sp, #16
    adr x0, sh
    mov x8, #221                // execve("/bin/sh", argv, envp)
    svc #0
fail:
    mov x19, #126
    cmn x0, #2                  // -ENOENT
    b.ne 1f
    mov x19, #127
1:  mov x0, #2
    adr x1, msg
    mov x2, #(msgend-msg)
    mov x8, #64                 // write(2, msg, length)
    svc #0
    ldr x1, [sp, #16]           // then PATH, if there is one
    cbz x1, 3f
    mov x2, x1
2:  ldrb w3, [x2]               // strlen
    cbz w3, 4f
    add x2, x2, #1
    b 2b
4:  sub x2, x2, x1
    mov x0, #2
    mov x8, #64                 // write(2, PATH, length)
    svc #0
3:  mov x0, #2
    adr x1, nl
    mov x2, #1
    mov x8, #64                 // write(2, "\n", 1)
    svc #0
    mov x0, x19
    mov x8, #94                 // exit_group(126 or 127)
    svc #0
sh: .asciz "/bin/sh"
nl: .ascii "\n"
msg: .ascii "execbridge launcher: cannot execute "
msgend:
