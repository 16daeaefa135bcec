;; prelude: memory abi ok
;; The guest's allocator traps when the host asks it for argument space.
(func $broken_alloc (export "wasmpool_alloc") (param i32) (result i32)
  (if (i32.gt_u (local.get 0) (i32.const 0)) (then unreachable))
  i32.const 1024)
(func (export "wasmpool_task_attack") (param i32 i32) (result i32) i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\01\01x\03u64\02()\00")
