"""``sed`` and ``awk`` in the model shell against busybox 1.35: the differential tables of the editors.

Same harness as ``test_shell_tools.py``: each case runs in the model (the engine's
shell entry point) and under ``/bin/busybox`` as ``/bin/sh -c`` on the host, and the
status, stdout, stderr and resulting files must agree.
"""

from __future__ import annotations

import pytest

from tests.containers.test_shell_tools import Case, case_list, check

SED = case_list([
    "sed s/o/0/ f", "sed s/o/0/g f", "sed -n 2p f", "sed 2d f", "sed '$d' f", "sed -n '/t/p' f", "sed 2,3d f",
    "sed -n '/two/,/three/p' f", r"sed 's/\(o\)\(n\)/\2\1/' f", "sed -E 's/(t)(w)/\\2\\1/' f", "sed -r 's/(o+)/<\\1>/g' f",
    "sed 's|o|/|' f", "sed 's,o,\\,,g' f", "sed -n 's/o/[&]/gp' f", "sed -e s/o/X/ -e s/t/T/ f", "sed nosuch f",
    "sed s/a/b/ nosuch", "sed s/a/b/ nosuch f", "sed 's/a/b' f", "sed -n '$=' f", "sed = f", "sed p nonl", "sed -n p nonl",
    "sed s/y/Y/ nonl f", "sed '2i\\\nhello' f", "sed '1a foo' f", "sed '3c bar' f", "sed '2,3c bar' f", "sed 's/x*/-/g' f",
    "sed -i s/o/0/ f; cat f", "sed -i -e '1i top' -e '$a end' f", "sed -i s/x/y/ nonl", "sed -i 1d f n", "sed -i s/a/b/",
    "sed -i s/a/b/ nosuch f", "sed 2q f", "sed '2q5' f; echo $?", "sed -n '2{p;p}' f", "sed y/abc/xyz/ csv", "sed '$!N;s/\\n/-/' f",
    "sed -n 'h;n;G;p' f", "sed", "sed -Q", "sed 2,+1d f", "sed '0,/o/d' f", "sed '/o/!d' f", "sed '1!G;h;$!d' f",
    "sed -n '/^t/{s/t/T/;p}' f", "sed 's/o/0/2' passwd", "sed 's/o/0/2g' passwd", "sed 's/:.*//' passwd", "sed 's/^/> /' f",
    "sed 's/$/;/' f", "sed -n '/root/,$p' passwd", "sed -n '2,/x/p' f", "sed '/^$/d' words", "sed -e 's/a/A/' -e 's/b/B/' csv",
    "sed 's/[0-9][0-9]*/N/g' csv", "sed -E 's/[0-9]+/N/g' csv", "sed 's/\\(.*\\),\\(.*\\),\\(.*\\)/\\3 \\1/' csv",
    "sed -n '/a/I p' dup", "sed 's/A/x/I' dup", "sed 's/a/b/w /dev/stdout' f", "sed k f", "sed '{p' f", "sed 'p}' f",
    "sed 's/x/y/q' f", "sed '1,' f", "sed 's/\\(/x/' f", "sed 'bfoo' f", "sed ':a;s/^.\\{1,5\\}$/ &/;ta' f",
    "sed -n '$p' f n", "sed -n '1p' empty f", "sed 's/e/E/;t;s/o/O/' f", "sed '/two/{n;d}' f", "sed 'n;d' f",
    "sed -n 'x;p' f", "sed '$a\\\nlast' nonl", "sed 's/t/\\n/' f", "sed 's/.*/\"&\"/' f", "sed -n '/o/=' f",
    "sed 'y/ot/OT/' f", "sed -e 'a\\' -e 'after' f", "sed -f nosuch f", "echo 's/o/0/g' > s.sed; sed -f s.sed f",
    "sed -s -n 1p f n", "sed -n '1,+p' f", "sed -n '2,+0p' f", "sed --version", "sed --help", "sed '/[/p' f", "sed 's/[/x/' f", "sed 's/a/\\9/' f", "sed D f", "sed '$!D' f", "sed -n 'P' f", "sed 's#/#|#g' passwd", "sed 's/[/]/X/' passwd",
    ("sed s/b/c/", b"a\nb"), ("sed -n '1!p'", b"1\n2\n3\n"), ("sed '1~2d'", b"1\n2\n3\n"), ("sed s/a/b/", b""),
    ("sed 's/b*/-/g'", b"abc\n"), ("sed -E 's/(a|b)+/X/'", b"abba c\n"), ("sed 's/\\./!/g'", b"a.b.c\n"),
    ("sed -n '/start/,/end/{/end/!p}'", b"x\nstart\n1\n2\nend\ny\n"), ("sed 's/ *$//'", b"a  \nb \n"),
    "sed 'r nonl' f", "sed '2r nosuch' f", "sed -n '/o/w out' f; cat out", "sed 's/o/0/w out' f; cat out", "sed '2Q' f",
    "sed 'z' f", ("sed 'a foo'", b"x"), ("sed 'i foo'", b"x"), ("sed =", b"x"), ("sed -n 's/x/y/p'", b"x"), ("sed q", b"x"),
    ("sed G", b"x\n"),
    ("sed -e :a -e '$!N;s/\\n//;ta'", b"a\nb\nc\n"), ("sed '=' -", b"q\n"), ("sed -n '$='", b"1\n2\n3"),
])

AWK = case_list([
    "awk '{print $1}' n", "awk '{print $2, $1}' n", "awk '{print $NF}' words", "awk '{print NF}' words",
    "awk -F: '{print $1, $7}' passwd", "awk -F, '{print $2}' csv", "awk -F, 'NR>1 {print $1}' csv",
    "awk '{s += $1} END {print s, NR}' n", "awk 'NR==2' f", "awk 'NR%2' f", "awk '/t/' f", "awk '!/t/' f",
    "awk '/two/,/three/ {print NR\": \"$0}' f", "awk '$1 > 2' n", "awk '$1 == 10 {c++} END {print c}' n",
    "awk 'BEGIN {print \"hi\"}'", "awk 'END {print NR}' f", "awk 'BEGIN{x=1} {x*=2} END{print x}' f",
    "awk '{printf \"%-6s|%5.2f|%d\\n\", $2, $1, $1}' n", "awk 'BEGIN{printf \"%5s|%-5d|%.3s|%e|%g\\n\", \"ab\", 42, \"abcdef\", 1234.5, 0.0001}'",
    "awk 'BEGIN{printf \"%c%c%c\\n\", 65, \"bc\", 256+67}'", "awk 'BEGIN{printf \"%x %o %X %i %%\\n\", 255, 8, 255, 3.9}'",
    "awk '{print length($0)}' f", "awk '{print length}' words", "awk 'BEGIN{print length(\"\"), length(12345), length(1/4)}'",
    "awk 'BEGIN{print substr(\"hello\", 2, 3), substr(\"hello\", 0, 2), substr(\"hello\", -1), substr(\"hello\", 4)}'",
    "awk 'BEGIN{print substr(\"hello\", 1.5, 2.7), substr(\"hello\", 2, -1) \"|\"}'",
    "awk 'BEGIN{print index(\"abc\", \"c\"), index(\"abc\", \"x\"), toupper(\"abC\"), tolower(\"ABc\")}'",
    "awk 'BEGIN{n = split(\"a:b:c\", arr, \":\"); print n, arr[1], arr[3]}'", "awk '{n = split($0, w); print n, w[n]}' words",
    "awk 'BEGIN{n = split(\"a1b22c\", p, /[0-9]+/); print n, p[1], p[2], p[3]}'",
    "awk 'BEGIN{s = \"aaa\"; n = gsub(/a/, \"b\", s); print n, s}'", "awk '{sub(/o/, \"0\"); print}' f",
    "awk '{gsub(/[aeiou]/, \"<&>\"); print}' f", "awk '{gsub(\"o\", \"\\\\&\"); print}' f",
    "awk 'BEGIN{print match(\"foobar\", /o+/), RSTART, RLENGTH; print match(\"x\", /y/), RSTART, RLENGTH}'",
    "awk '{if ($1 > 5) print \"big\", $1; else print \"small\", $1}' n",
    "awk '{for (i = NF; i > 0; i--) printf \"%s \", $i; print \"\"}' words",
    "awk 'BEGIN{while (i < 3) {i++; if (i == 2) continue; print i}}'", "awk 'BEGIN{do {print i; i++} while (i < 2)}'",
    "awk 'BEGIN{for (i = 0; i < 10; i++) {if (i == 3) break; print i}}'",
    "awk 'function f(x) {return x * 2} BEGIN {print f(21)}'", "awk 'function fact(n) {return n <= 1 ? 1 : n * fact(n - 1)} BEGIN {print fact(10)}'",
    "awk 'function add(a, k) {a[k] = 1} BEGIN {add(arr, \"x\"); print (\"x\" in arr)}'",
    "awk '{c[$2]++} END {for (k in c) print k, c[k]}' n | sort", "awk 'BEGIN{a[\"x\"]; delete a[\"x\"]; print length(a), (\"x\" in a)}'",
    "awk 'BEGIN{a[1,2] = 3; for (k in a) {split(k, p, SUBSEP); print p[1], p[2], a[k]}}'",
    "awk 'BEGIN{x = 1; x += 2; x *= 3; print x, x++, ++x, x--, x}'", "awk 'BEGIN{print 1 == 1.0, \"a\" < \"b\", 2 < 10, \"2\" < \"10\"}'",
    "awk 'BEGIN{print 7/2, int(-3.7), -7%3, 10%3, 1e6, 1e30, 100000*100000, 0.1+0.2, -0}'", "awk 'BEGIN{print 1/3}'",
    "awk 'BEGIN{OFMT=\"%.2f\"; x=3.14159; print x; y = x \"\"; print y}'", "awk 'BEGIN{CONVFMT=\"%.2f\"; x=3.14159; y = x \"\"; print y}'",
    "echo '010 0x10 1e2 3x' | awk '{print $1+0, $2+0, $3+0, $4+0}'", "echo '10 9' | awk '{print ($1 > $2)}'",
    "echo '10 9x' | awk '{print ($1 > $2), ($2 > 5)}'", "awk 'BEGIN{x = \"10\"; y = 9; print (x > y)}'",
    "echo abc | awk '{print ($1 == 0), ($1 < 1), ($1 > \"a\")}'", "echo | awk '{print ($1 == 0), ($1 == \"\")}'",
    "echo 0 | awk '$1'", "echo ' 0 ' | awk '$1'", "echo x | awk '$1'", "awk 'BEGIN{if (!x) print \"unset\"; if (x == 0 && x == \"\") print \"both\"}'",
    "awk -v x=5 'BEGIN{print x + 1}'", "awk -v 's=a\\tb' 'BEGIN{print s}'", "awk '{print v, $1}' v=1 f v=2 n",
    "awk -F: -v OFS=- '{$1 = $1; print}' passwd", "awk -F: '{$3 = \"z\"; print; print NF}' passwd",
    "awk '{NF = 2; print}' words", "awk '{$5 = \"e\"; print; print NF}' n", "awk '{$0 = \"x y\"; print $2, NF}' f",
    "printf '  a   b  \\n' | awk '{print NF; $1 = $1; print}'", "awk -F'\\t' '{print $2}' tab", "awk -Ft '{print $2}' tab",
    "echo aXXbXc | awk -FX+ '{print $2, NF}'", "echo a:b:c | awk 'BEGIN{FS=\":\"} {print $2}'", "echo abc | awk -F '' '{print $2}'",
    "awk '{print > \"out\"} END {close(\"out\"); while ((getline line < \"out\") > 0) print \"got\", line}' f",
    "awk '{print >> \"f\"}' n; cat f", "awk 'NR==1 {getline; print \"next:\", $0}' f", "awk 'NR==1 {getline x; print x, NR}' f",
    "awk 'BEGIN {while ((getline l < \"f\") > 0) n++; print n}'", "awk 'BEGIN {print (getline l < \"nosuch\")}'",
    "awk '{print}' nosuch", "awk '{print}' f nosuch", "awk 'BEGIN{exit 3} END{print \"end\"}'; echo $?",
    "awk '{print; exit} END {print \"end\"}' f", "awk 'NR == 2 {next} {print}' f", "awk 'BEGIN{print 1/0}'",
    "awk 'BEGIN{print 2^3}'", "awk 'BEGIN{print sqrt(4)}'", "awk '{'", "awk 'BEGIN{x=}'", "awk", "awk -Q", "awk -f nosuch",
    "echo 'BEGIN{print \"file\"}' > p.awk; awk -f p.awk", "awk 'BEGIN{printf \"%s\"}'", "awk 'BEGIN{printf \"%d %d\\n\", 1}'",
    "awk '{print $1 \"-\" $2}' n", "awk '{print $1, $2}' OFS=: n", "awk 'BEGIN{ORS=\";\"} {print}' f", "awk '$0 ~ /^t/' f",
    "awk '$0 !~ \"e\"' f", "awk '{x = x $1} END {print x}' f", "awk 'BEGIN{RS=\"\"} {print NR\": \"$1}' words",
    "awk 'BEGIN{RS=\",\"} {print}' csv", "awk 'length > 3' f", "awk '{print (NR > 2 ? \"late\" : \"early\"), $0}' f",
    "awk 'BEGIN{s = sprintf(\"%03d-%s\", 7, \"x\"); print s}'", "awk '{print NR, FNR, FILENAME}' f nonl", "awk 'END{print $0, NF}' n",
    "awk 'BEGIN{print ENVIRON[\"HOME\"]}'", "awk 'BEGIN{print ARGC, ARGV[1]}' f", "awk 'BEGIN{system(\"echo sys\"); print \"after\"}'",
    "awk -F: '$3 >= 1 && $3 < 100 {print $1}' passwd", "awk '/^$/ {e++} END {print e + 0}' words", "awk '{$2 = \"\"; print}' n",
    "awk 'BEGIN{x[\"a\"] = 1; if (\"a\" in x) print \"yes\"; if (!(\"b\" in x)) print \"no\"}'", "awk '{print $(NF-1)}' words",
    "awk 'BEGIN{a = \"3\" + 4; b = \"3\" \"4\"; print a, b, a b}'", "awk 'BEGIN{print -3 \" \" -3}'", "awk 'BEGIN{print 1, 2 > \"/dev/stderr\"}'",
    "awk 'BEGIN{print \"a\" > \"nodir/x\"}'", "awk 'BEGIN{n = split(\"\", e); print n, length(e)}'", "awk 'BEGIN{print index(\"\", \"\")}'",
    "awk 'BEGIN { while ((\"echo hi; echo ho\" | getline l) > 0) print l; close(\"echo hi; echo ho\") }'",
    "awk '{ print | \"sort -r\" } END { print \"end\" }' f", "awk '{ print | \"sort\" } END { close(\"sort\"); print \"end\" }' f",
    "awk 'BEGIN { cmd = \"wc -l < f\"; cmd | getline n; print n + 0 }'", "awk '{ print $1 | \"cat 1>&2\" }' f",
    "awk '{ total[$1] += $2 } END { for (k in total) print k, total[k] }' n | sort", "awk 'NR > 1 { print prev } { prev = $0 }' f",
    "awk '{ $1 = \"\"; sub(/^ /, \"\"); print }' words", "awk 'BEGIN{FS=\",\"; OFS=\"|\"} {$1=$1} 1' csv", "awk 1 f", "awk NF words",
    "awk '{printf \"%s%s\", sep, $0; sep=\",\"} END {print \"\"}' f", "awk -v n=3 'NR <= n' f", "awk '$2 ~ /^[0-9]+$/ {print $1}' n",
    "awk 'BEGIN{print substr()}'", "awk 'BEGIN{print substr(\"abc\", 1, 2, 3)}'", "awk 'BEGIN{a[1] = 1; print a}'",
    "awk 'BEGIN{printf}'", "awk 'BEGIN{printf \"%*d\\n\", 3, 5}'", "awk 'BEGIN{printf \"%d %i\\n\", 3000000000, \"inf\"}'",
    "awk 'BEGIN{print int(\"nan\"), int(\"-inf\")}'", "awk 'BEGIN{NF = -1}'", "awk 'BEGIN{printf \"%5%|%q\\n\"}'", "awk --help",
    "awk 'BEGIN{printf \"%5%|\\n\"}'", "awk '{print $}' f", "awk 'BEGIN{getline x < }'", "awk 'BEGIN{print 1,}'",
    ("awk '{print $2}'", b"a b\nc\n"), ("awk 'END{print NR}'", b""), ("awk '{print}'", b"no newline"),
    ("awk -F, '{s += $2} END {printf \"%.1f\\n\", s / NR}'", b"a,1\nb,2\n"), ("awk '{print toupper(substr($0, 1, 1)) substr($0, 2)}'", b"hello\nworld\n"),
])

TABLES = {"sed": SED, "awk": AWK}
ALL_CASES = [(tool, case) for tool, cases in TABLES.items() for case in cases]


@pytest.mark.parametrize("tool,case", ALL_CASES, ids=[f"{tool}:{i}:{c.cmd[:50]}" for i, (tool, c) in enumerate(ALL_CASES)])
def test_editor_matches_busybox(tool: str, case: Case) -> None:
    check(case)


def test_the_editor_tables_are_large_enough() -> None:
    assert len(SED) >= 60 and len(AWK) >= 100, (len(SED), len(AWK))
