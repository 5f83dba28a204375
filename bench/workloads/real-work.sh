# Workload 3: "real work" — what an agent's shell session does: a
# configure-style probe of the toolchain, a small C build, running the result,
# then text processing over generated files (sed, grep, sort, awk, tar...).
# Every command is a separate exec, as in a real configure script.
# Usage: bash real-work.sh WORKDIR [SCALE]   (SCALE 1 = full, smaller = smoke)
set -eu
work=$1
scale=${2:-1}
files=$((40 * scale))
units=$((4 * scale))
mkdir -p "$work/src" "$work/build" "$work/text"
cd "$work"

# --- configure: probe headers and functions by compiling tiny programs ---
: > build/config.h
for h in stdio.h stdlib.h string.h unistd.h; do
  printf '#include <%s>\nint main(void){return 0;}\n' "$h" > build/conftest.c
  if cc -c -o build/conftest.o build/conftest.c 2> /dev/null; then
    guard=$(printf '%s' "$h" | tr 'a-z.' 'A-Z_')
    echo "#define HAVE_$guard 1" >> build/config.h
  fi
done
rm -f build/conftest.c build/conftest.o
for prog in sed grep awk sort tar gzip; do
  command -v "$prog" > /dev/null || { echo "missing $prog" >&2; exit 1; }
done

# --- build: generate units, compile each, link, run ---
for ((u = 0; u < units; u++)); do
  cat > "src/unit$u.c" << C
#include "config.h"
int unit$u(int x) { return x * $((u + 3)) % 97; }
C
done
{
  echo '#include <stdio.h>'
  for ((u = 0; u < units; u++)); do echo "int unit$u(int);"; done
  echo 'int main(void) { int s = 0;'
  for ((u = 0; u < units; u++)); do echo "  s += unit$u($u);"; done
  echo '  printf("%d\n", s); return 0; }'
} > src/main.c
objs=()
for c in src/*.c; do
  o=build/$(basename "$c" .c).o
  cc -O0 -Ibuild -c -o "$o" "$c"
  objs+=("$o")
done
cc -o build/app "${objs[@]}"
result=$(build/app)
test -n "$result"

# --- text processing: generate, transform, index, archive ---
for ((i = 0; i < files; i++)); do
  printf 'line %d alpha\nline %d beta\nTODO fix %d\n' "$i" "$((i * 7))" "$i" > "text/f$i.txt"
  sed -e 's/alpha/ALPHA/' "text/f$i.txt" > "text/f$i.out"
  grep -q ALPHA "text/f$i.out"
  wc -l < "text/f$i.out" > /dev/null
  cut -d' ' -f2 "text/f$i.out" | sort -n | uniq > "text/f$i.nums"
done
grep -h TODO text/*.txt | awk '{ n += $3 } END { print n }' > build/todo-sum
cat text/*.nums | sort -n | uniq -c | sort -rn | head -n 5 > build/top
find text -name '*.out' | sort > build/manifest
tar -czf build/text.tgz text
tar -tzf build/text.tgz | wc -l > build/count
sha256sum build/text.tgz build/app > build/SUMS
echo "result=$result todo=$(cat build/todo-sum) files=$(cat build/count)"
