module github.com/calld/calld

go 1.26.8
