;; prelude: memory abi alloc ok
;; The start function divides by zero.
(func $boom (drop (i32.div_u (i32.const 1) (i32.const 0))))
(start $boom)
