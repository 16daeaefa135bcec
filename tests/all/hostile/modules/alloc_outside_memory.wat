;; prelude: memory abi ok
;; The allocator hands out an address past the end of memory.
(func (export "wasmpool_alloc") (param i32) (result i32)
  (if (result i32) (i32.gt_u (local.get 0) (i32.const 0))
    (then i32.const 0xfff00000) (else i32.const 1024)))
(func (export "wasmpool_task_attack") (param i32 i32) (result i32) i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\01\01x\03u64\02()\00")
