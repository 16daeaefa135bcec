;; prelude: abi alloc ok
;; A second memory exported under the name of the host's write-mark map
;; (which the load-time rewrite then refuses to add, so the module runs as
;; it is): each memory grows to 10 MiB, 20 MiB together, past the pool's
;; 16 MiB for all of an instance's memory.
(memory $first (export "memory") 1)
(memory $second (export "__wasmpool_written_pages") 1)
(func (export "wasmpool_task_attack") (param i32 i32) (result i32)
  (if (i32.eq (memory.grow $second (i32.const 159)) (i32.const -1)) (then unreachable))
  (if (i32.eq (memory.grow $first (i32.const 159)) (i32.const -1)) (then unreachable))
  i32.const 0)
(@custom "wasmpool.tasks" "\01\06attack\00\02()\00")
