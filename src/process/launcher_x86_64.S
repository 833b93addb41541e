# The execbridge launcher for x86_64 Linux: `launcher PATH ARGV0 ARGS...`
# calls setsid() and then execve(PATH, [ARGV0, ARGS...], envp), so the
# program runs in a new session (its own process group) under the same pid.
# A file that is not a binary (ENOEXEC) runs under /bin/sh, as execvp does.
# On failure it names the program on stderr and exits 127 (not found) or 126.
# A failed setsid() is a failure too: the child must not stay in our group.
#
# src/process/launcher.ts embeds the bytes of this code; a test assembles this
# file (when `as` is installed) and checks that they are the same:
#   as -o l.o launcher_x86_64.S && objcopy -O binary -j .text l.o l.bin
.intel_syntax noprefix
.globl _start
_start:
    mov eax, 112                # setsid()
    syscall
    test rax, rax               # failed: don't run the program in the caller's group
    js fail
    mov rdi, [rsp+16]           # PATH = argv[1]
    lea rsi, [rsp+24]           # argv = &argv[2]
    mov rdx, [rsp]              # argc
    lea rdx, [rsp+rdx*8+16]     # envp = &argv[argc + 1]
    mov eax, 59                 # execve(PATH, argv, envp)
    syscall
    cmp eax, -8                 # -ENOEXEC: a script without #!
    jne fail
    cmp qword ptr [rsp], 3      # needs an argv[2] to overwrite
    jb fail
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
    mov rsi, [rsp+16]           # then PATH, if there is one
    test rsi, rsi
    jz 3f
    mov rdx, rsi
2:  cmp byte ptr [rdx], 0       # strlen
    je 4f
    inc rdx
    jmp 2b
4:  sub rdx, rsi
    mov edi, 2
    mov eax, 1                  # write(2, PATH, length)
    syscall
3:  mov edi, 2
    lea rsi, [rip+nl]
    mov edx, 1
    mov eax, 1                  # write(2, "\n", 1)
    syscall
    mov edi, r12d
    mov eax, 231                # exit_group(126 or 127)
    syscall
sh: .asciz "/bin/sh"
nl: .ascii "\n"
msg: .ascii "execbridge launcher: cannot execute "
msgend:
