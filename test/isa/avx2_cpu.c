// LD_PRELOAD shim: every thread of the process sees an AVX2-only x86-64 CPU (no AVX-512, AMX, AVX-VNNI, AVX10),
// like the AMD EPYC (family 25) where LoRA once drifted. Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID) makes
// each CPUID instruction raise SIGSEGV; the handler runs the real CPUID with faulting off, clears the feature bits
// and resumes after the instruction. The setting is per thread and inherited by threads created later, so the
// constructor runs before any library starts a thread. Other SIGSEGVs go to the previous handler.
// Node needs --disable-wasm-trap-handler beside it (V8's own SIGSEGV handler would otherwise take these faults).
// Build: cc -O2 -shared -fPIC -o avx2_cpu.so avx2_cpu.c   (test/isa/run.js does it)
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>

static struct sigaction previous;

// r = {eax, ebx, ecx, edx} of CPUID(leaf, sub); the bits are Intel SDM vol. 2A, table 3-8 (CPUID leaf 7) and leaf 0xD.
static void mask(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    if (leaf == 7 && sub == 0) {
        // EBX: AVX512F, DQ, IFMA, PF, ER, CD, BW, VL. ECX: VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ.
        // EDX: 4VNNIW, 4FMAPS, VP2INTERSECT, AMX-BF16, AVX512_FP16, AMX-TILE, AMX-INT8.
        r[1] &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31));
        r[2] &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
        r[3] &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
    } else if (leaf == 7 && sub == 1) {
        // EAX: AVX-VNNI, AVX512_BF16, AMX-FP16, AVX-IFMA. EDX: AVX-VNNI-INT8, AVX-NE-CONVERT, AVX10.
        r[0] &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23));
        r[3] &= ~((1u << 4) | (1u << 5) | (1u << 19));
    } else if (leaf == 0xd && sub == 0) {
        // XSAVE state components: opmask, ZMM_Hi256, Hi16_ZMM, AMX TILECFG, TILEDATA.
        r[0] &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));
    }
}

static void on_segv(int sig, siginfo_t* info, void* context) {
    ucontext_t* uc = (ucontext_t*)context;
    greg_t* g = uc->uc_mcontext.gregs;
    const unsigned char* ip = (const unsigned char*)g[REG_RIP];
    if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
        uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX], r[4];
        syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
        __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
        syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
        mask(leaf, sub, r);
        g[REG_RAX] = r[0]; g[REG_RBX] = r[1]; g[REG_RCX] = r[2]; g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        return;
    }
    if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) { previous.sa_sigaction(sig, info, context); return; }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) { previous.sa_handler(sig); return; }
    signal(SIGSEGV, SIG_DFL);  // the faulting instruction runs again and ends the process as usual
}

__attribute__((constructor)) static void install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_segv;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &action, &previous);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        fprintf(stderr, "avx2_cpu: CPUID faulting is not available on this CPU or kernel\n");
        _exit(70);
    }
}
