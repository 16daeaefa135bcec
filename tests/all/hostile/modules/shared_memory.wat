;; prelude: abi alloc
;; Exports a shared memory, which the ABI forbids (workers never share memory).
(memory (export "memory") 1 1 shared)
