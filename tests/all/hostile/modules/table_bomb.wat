;; prelude: memory abi alloc ok
;; A table of ten million elements, declared up front.
(table 10000000 funcref)
