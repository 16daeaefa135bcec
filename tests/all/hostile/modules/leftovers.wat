;; prelude: memory abi alloc ok
;; `write` scribbles over its memory: the data of `ok`'s result, an address
;; in its initial page, and grown pages (inside and past the 4 MiB the host
;; resets in place). `read` (in a fresh instance)
;; grows memory the same way and traps if it finds any of it: one task must
;; never see what an earlier task left in the same instance slot.
(func $grow (drop (memory.grow (i32.const 80))))
(func (export "wasmpool_task_write") (param i32 i32) (result i32)
  (call $grow)
  (i32.store8 (i32.const 16) (i32.const 0x77))
  (i32.store (i32.const 40000) (i32.const 0xdeadbeef))
  (i32.store (i32.const 0x20000) (i32.const 0xdeadbeef))
  (i32.store (i32.const 0x3f0000) (i32.const 0xdeadbeef))
  (i32.store (i32.const 0x480000) (i32.const 0xdeadbeef))
  i32.const 0)
(func (export "wasmpool_task_read") (param i32 i32) (result i32)
  (call $grow)
  (if (i32.or
        (i32.or (i32.load (i32.const 40000)) (i32.load (i32.const 0x20000)))
        (i32.or (i32.load (i32.const 0x3f0000)) (i32.load (i32.const 0x480000))))
    (then unreachable))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\05write\00\03u32\00")
(@custom "wasmpool.tasks" "\01\04read\00\03u32\00")
