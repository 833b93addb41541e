# The execbridge launcher for x86_64 Linux: `launcher PATH ARGV0 ARGS...`
# calls setsid() and then execve(PATH, [ARGV0, ARGS...], envp), so the
# program runs in a new session (its own process group) under the same pid.
# A file that is not a binary (ENOEXEC) runs under /bin/sh, as execvp does.
# On failure it says so on stderr and exits 127 (not found) or 126.
#
# src/process/launcher.ts embeds the bytes of this code; a test assembles this
# file (when `as` is installed) and checks that they are the same:
#   as -o l.o launcher_x86_64.S && objcopy -O binary -j .text l.o l.bin
.intel_syntax noprefix
.globl _start
_start:
    mov eax, 112                # setsid()
    syscall
    mov rdi, [rsp+16]           # PATH = argv[1]
    lea rsi, [rsp+24]           # argv = &argv[2]
    mov rdx, [rsp]              # argc
    lea rdx, [rsp+rdx*8+16]     # envp = &argv[argc + 1]
    mov eax, 59                 # execve(PATH, argv, envp)
    syscall
    cmp eax, -8                 # -ENOEXEC: a script without #!
    jne fail
    mov [rsp+24], rdi           # argv[2] = PATH: sh gets [PATH, PATH, ARGS...]
    lea rsi, [rsp+16]
    lea rdi, [rip+sh]
    mov eax, 59                 # execve("/bin/sh", argv, envp)
    syscall
fail:
    mov r12d, 126
    cmp eax, -2                 # -ENOENT
    jne 1f
    mov r12d, 127
1:  mov edi, 2
    lea rsi, [rip+msg]
    mov edx, msgend-msg
    mov eax, 1                  # write(2, msg, length)
    syscall
    mov edi, r12d
    mov eax, 231                # exit_group(126 or 127)
    syscall
sh: .asciz "/bin/sh"
msg: .ascii "execbridge launcher: cannot execute the program\n"
msgend:
