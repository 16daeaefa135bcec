/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Rust programs
 * under Debian's Wine 8.0.
 *
 * Rust's standard library (since 1.78) gets its random bytes from
 * ProcessPrng in bcryptprimitives.dll; Wine 8.0's builtin DLL lacks that
 * function, so every Rust .exe stops before main with status c0000135
 * (DLL not found). This DLL provides exactly that one function, on top of
 * RtlGenRandom (advapi32's SystemFunction036), which Wine does have. It is
 * installed into the Wine prefix by .ci/windows and never shipped.
 */
#include <windows.h>
#include <ntsecapi.h>

/* Fills `data` with `len` random bytes; TRUE on success, as Windows' own. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        /* RtlGenRandom takes a 32-bit length: feed it in pieces. */
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
