module github.com/geomatch/geomatch

go 1.26.8
