import assert from "node:assert/strict";
import {
  INTERNAL_ERROR,
  INVALID_PARAMS,
  INVALID_REQUEST,
  NOT_FOUND,
  RpcError,
} from "../src/protocol/errors.ts";
import { type ExecFileSystem, LocalFileSystem, MAX_READ_FILE_BYTES } from "../src/fs/mod.ts";
import { remote } from "./support/backends.ts";

/** A filesystem implementation under test: local, or over a real `serve` subprocess. */
interface Backend {
  name: string;
  open(): Promise<{ fs: ExecFileSystem; close(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: "local",
    // deno-lint-ignore require-await
    async open() {
      return { fs: new LocalFileSystem(), close: async () => {} };
    },
  },
  remote,
];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Runs `body` with an open backend and a fresh temp dir, cleaning both up. */
async function withFs(
  backend: Backend,
  body: (fs: ExecFileSystem, dir: string) => Promise<void>,
): Promise<void> {
  const { fs, close } = await backend.open();
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "execbridge_fs_" }));
  try {
    await body(fs, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await close();
  }
}

/** Asserts that `promise` rejects with an `RpcError` of `code` (and `message` when given). */
async function assertRpcError(
  promise: Promise<unknown>,
  code: number,
  message?: string | RegExp,
): Promise<RpcError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof RpcError, `expected an RpcError, got ${caught}`);
  const err = caught as RpcError;
  assert.equal(err.code, code, `unexpected code for: ${err.message}`);
  if (typeof message === "string") assert.equal(err.message, message);
  else if (message) assert.match(err.message, message);
  return err;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function mkfifo(path: string): Promise<void> {
  const { success, stderr } = await new Deno.Command("mkfifo", { args: [path], stderr: "piped" })
    .output();
  assert.ok(success, `mkfifo failed: ${decoder.decode(stderr)}`);
}

async function readText(fs: ExecFileSystem, path: string): Promise<string> {
  return decoder.decode(await fs.readFile(path));
}

for (const backend of backends) {
  Deno.test(`fs ${backend.name}: getMetadata of file, symlinks and broken symlink`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.writeTextFile(`${dir}/file.txt`, "hello");
      await Deno.mkdir(`${dir}/sub`);
      await Deno.symlink(`${dir}/file.txt`, `${dir}/to_file`);
      await Deno.symlink(`${dir}/sub`, `${dir}/to_dir`);
      await Deno.symlink(`${dir}/missing`, `${dir}/broken`);

      const file = await fs.getMetadata(`${dir}/file.txt`);
      assert.deepEqual(
        { isFile: file.isFile, isDirectory: file.isDirectory, isSymlink: file.isSymlink },
        { isFile: true, isDirectory: false, isSymlink: false },
      );
      assert.equal(file.size, 5);
      assert.ok(file.modifiedAtMs > 0);
      assert.ok(file.createdAtMs >= 0);
      assert.ok(Math.abs(file.modifiedAtMs - Date.now()) < 60_000);

      const toFile = await fs.getMetadata(`${dir}/to_file`);
      assert.deepEqual(
        { isFile: toFile.isFile, isDirectory: toFile.isDirectory, isSymlink: toFile.isSymlink },
        { isFile: true, isDirectory: false, isSymlink: true },
      );
      assert.equal(toFile.size, 5);

      const toDir = await fs.getMetadata(`${dir}/to_dir`);
      assert.deepEqual(
        { isFile: toDir.isFile, isDirectory: toDir.isDirectory, isSymlink: toDir.isSymlink },
        { isFile: false, isDirectory: true, isSymlink: true },
      );

      const broken = await fs.getMetadata(`${dir}/broken`);
      assert.deepEqual(
        { isFile: broken.isFile, isDirectory: broken.isDirectory, isSymlink: broken.isSymlink },
        { isFile: false, isDirectory: false, isSymlink: true },
      );
      assert.ok(broken.modifiedAtMs > 0);

      await assertRpcError(
        fs.getMetadata(`${dir}/missing`),
        NOT_FOUND,
        /^fs\/getMetadata .*\/missing: /,
      );
    });
  });

  Deno.test(`fs ${backend.name}: the whole surface`, async () => {
    await withFs(backend, async (fs, dir) => {
      await fs.createDirectory(`${dir}/a/b/c`);
      assert.ok((await Deno.stat(`${dir}/a/b/c`)).isDirectory);
      await fs.createDirectory(`${dir}/a/b/c`); // mkdir -p tolerates an existing directory

      await fs.writeFile(`${dir}/a/top.txt`, encoder.encode("top"));
      await fs.writeFile(`${dir}/a/b/c/deep.txt`, encoder.encode("deep"));
      assert.equal(await readText(fs, `${dir}/a/top.txt`), "top");
      await fs.writeFile(`${dir}/a/top.txt`, encoder.encode("t")); // truncates
      assert.equal(await readText(fs, `${dir}/a/top.txt`), "t");
      await fs.writeFile(`${dir}/empty.bin`, new Uint8Array());
      assert.deepEqual(await fs.readFile(`${dir}/empty.bin`), new Uint8Array());

      await fs.copy(`${dir}/a/top.txt`, `${dir}/top_copy.txt`, { recursive: false });
      assert.equal(await readText(fs, `${dir}/top_copy.txt`), "t");

      await fs.copy(`${dir}/a`, `${dir}/a_copy`, { recursive: true });
      assert.equal(await readText(fs, `${dir}/a_copy/top.txt`), "t");
      assert.equal(await readText(fs, `${dir}/a_copy/b/c/deep.txt`), "deep");
      assert.ok(await exists(`${dir}/a/b/c/deep.txt`), "the source is untouched");

      await Deno.symlink(`${dir}/nowhere`, `${dir}/a_copy/broken`);
      await Deno.symlink(`${dir}/a_copy/b`, `${dir}/a_copy/link_to_dir`);
      const entries = await fs.readDirectory(`${dir}/a_copy`);
      entries.sort((x, y) => x.fileName.localeCompare(y.fileName));
      assert.deepEqual(entries, [
        { fileName: "b", isDirectory: true, isFile: false },
        { fileName: "link_to_dir", isDirectory: true, isFile: false },
        { fileName: "top.txt", isDirectory: false, isFile: true },
      ]);

      await fs.remove(`${dir}/a_copy`);
      assert.equal(await exists(`${dir}/a_copy`), false);
      await fs.remove(`${dir}/top_copy.txt`, { recursive: false, force: false });
      assert.equal(await exists(`${dir}/top_copy.txt`), false);
    });
  });

  Deno.test(`fs ${backend.name}: writeFile with a missing parent is NOT_FOUND`, async () => {
    await withFs(backend, async (fs, dir) => {
      const path = `${dir}/missing/file.txt`;
      await assertRpcError(
        fs.writeFile(path, encoder.encode("x")),
        NOT_FOUND,
        `fs/writeFile ${path}: No such file or directory (os error 2)`,
      );
      assert.equal(await exists(`${dir}/missing`), false);
      assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
    });
  });

  Deno.test(`fs ${backend.name}: readFile of a missing file is NOT_FOUND`, async () => {
    await withFs(backend, async (fs, dir) => {
      const path = `${dir}/nope.txt`;
      await assertRpcError(
        fs.readFile(path),
        NOT_FOUND,
        `fs/readFile ${path}: No such file or directory (os error 2)`,
      );
    });
  });

  Deno.test(`fs ${backend.name}: readFile of a directory is INVALID_REQUEST`, async () => {
    await withFs(backend, async (fs, dir) => {
      await assertRpcError(fs.readFile(dir), INVALID_REQUEST, new RegExp(`^fs/readFile ${dir}: `));
    });
  });

  Deno.test(`fs ${backend.name}: readFile refuses files over 512 MiB`, async () => {
    await withFs(backend, async (fs, dir) => {
      const path = `${dir}/huge.bin`;
      await Deno.writeFile(path, new Uint8Array());
      await Deno.truncate(path, MAX_READ_FILE_BYTES + 1); // sparse
      await assertRpcError(
        fs.readFile(path),
        INVALID_REQUEST,
        "file is too large to read: limit is 536870912 bytes",
      );
    });
  });

  Deno.test(`fs ${backend.name}: copy of a directory needs recursive`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.mkdir(`${dir}/src`);
      await assertRpcError(
        fs.copy(`${dir}/src`, `${dir}/dest`, { recursive: false }),
        INVALID_REQUEST,
        "fs/copy requires recursive: true when sourcePath is a directory",
      );
      assert.equal(await exists(`${dir}/dest`), false);
    });
  });

  Deno.test(`fs ${backend.name}: copy into itself or a descendant is refused`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.mkdir(`${dir}/src/sub`, { recursive: true });
      await Deno.symlink(`${dir}/src`, `${dir}/alias`);
      const message = "fs/copy cannot copy a directory to itself or one of its descendants";
      for (
        const destination of [
          `${dir}/src`,
          `${dir}/src/`,
          `${dir}/src/sub`,
          `${dir}/src/new`,
          `${dir}/src/new/deeper`,
          `${dir}/src/sub/../new`,
          `${dir}/alias/new`,
        ]
      ) {
        await assertRpcError(
          fs.copy(`${dir}/src`, destination, { recursive: true }),
          INVALID_REQUEST,
          message,
        );
      }
      // A symlink source is copied as a link, so no descendant check applies to it.
      await fs.copy(`${dir}/alias`, `${dir}/src/x`, { recursive: true });
      assert.equal(await Deno.readLink(`${dir}/src/x`), `${dir}/src`);
      const names = (await Array.fromAsync(Deno.readDir(`${dir}/src`))).map((e) => e.name);
      assert.deepEqual(names.sort(), ["sub", "x"]);
      // A sibling whose name starts with the source's name is not a descendant.
      await fs.copy(`${dir}/src`, `${dir}/src2`, { recursive: true });
      assert.ok((await Deno.stat(`${dir}/src2/sub`)).isDirectory);
    });
  });

  Deno.test(`fs ${backend.name}: remove deletes a symlink, not its target`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.mkdir(`${dir}/target`);
      await Deno.writeTextFile(`${dir}/target/keep.txt`, "keep");
      await Deno.symlink(`${dir}/target`, `${dir}/link`);
      await fs.remove(`${dir}/link`);
      assert.equal(await exists(`${dir}/link`), false);
      assert.equal(await Deno.readTextFile(`${dir}/target/keep.txt`), "keep");
    });
  });

  Deno.test(`fs ${backend.name}: copy of a symlink source copies the link`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.writeTextFile(`${dir}/target.txt`, "t");
      await Deno.symlink("target.txt", `${dir}/link`);
      await Deno.symlink(`${dir}/nowhere`, `${dir}/broken`);
      await fs.copy(`${dir}/link`, `${dir}/link_copy`, { recursive: false });
      await fs.copy(`${dir}/broken`, `${dir}/broken_copy`, { recursive: false });
      assert.ok((await Deno.lstat(`${dir}/link_copy`)).isSymlink);
      assert.equal(await Deno.readLink(`${dir}/link_copy`), "target.txt");
      assert.equal(await Deno.readLink(`${dir}/broken_copy`), `${dir}/nowhere`);
    });
  });

  Deno.test(`fs ${backend.name}: recursive copy preserves symlinks inside`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.mkdir(`${dir}/src/inner`, { recursive: true });
      await Deno.writeTextFile(`${dir}/src/inner/file.txt`, "f");
      await Deno.symlink("inner/file.txt", `${dir}/src/rel_link`);
      await Deno.symlink(`${dir}/src/inner`, `${dir}/src/abs_dir_link`);
      await Deno.symlink("../nowhere", `${dir}/src/inner/broken`);
      await fs.copy(`${dir}/src`, `${dir}/dest`, { recursive: true });
      assert.equal(await Deno.readLink(`${dir}/dest/rel_link`), "inner/file.txt");
      assert.equal(await Deno.readLink(`${dir}/dest/abs_dir_link`), `${dir}/src/inner`);
      assert.equal(await Deno.readLink(`${dir}/dest/inner/broken`), "../nowhere");
      assert.equal(await Deno.readTextFile(`${dir}/dest/rel_link`), "f");
    });
  });

  Deno.test(`fs ${backend.name}: copy keeps a file's mode bits`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.writeTextFile(`${dir}/run.sh`, "#!/bin/sh\n");
      await Deno.chmod(`${dir}/run.sh`, 0o751);
      await fs.copy(`${dir}/run.sh`, `${dir}/run_copy.sh`, { recursive: false });
      assert.equal((await Deno.stat(`${dir}/run_copy.sh`)).mode! & 0o777, 0o751);
    });
  });

  Deno.test(`fs ${backend.name}: copy of a file onto itself keeps it`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.writeTextFile(`${dir}/f.txt`, "data");
      await Deno.symlink(`${dir}/f.txt`, `${dir}/alias`);
      await assertRpcError(
        fs.copy(`${dir}/f.txt`, `${dir}/f.txt`, { recursive: false }),
        INVALID_REQUEST,
      );
      await assertRpcError(
        fs.copy(`${dir}/f.txt`, `${dir}/alias`, { recursive: false }),
        INVALID_REQUEST,
      );
      assert.equal(await Deno.readTextFile(`${dir}/f.txt`), "data");
    });
  });

  Deno.test(`fs ${backend.name}: recursive copy skips a fifo`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.mkdir(`${dir}/src`);
      await Deno.writeTextFile(`${dir}/src/file.txt`, "f");
      await mkfifo(`${dir}/src/pipe`);
      await fs.copy(`${dir}/src`, `${dir}/dest`, { recursive: true });
      const names = (await Array.fromAsync(Deno.readDir(`${dir}/dest`))).map((e) => e.name);
      assert.deepEqual(names, ["file.txt"]);
    });
  });

  Deno.test(`fs ${backend.name}: copy of a fifo source is refused`, async () => {
    await withFs(backend, async (fs, dir) => {
      await mkfifo(`${dir}/pipe`);
      await assertRpcError(
        fs.copy(`${dir}/pipe`, `${dir}/pipe_copy`, { recursive: false }),
        INVALID_REQUEST,
        "fs/copy only supports regular files, directories, and symlinks",
      );
      await assertRpcError(
        fs.copy(`${dir}/pipe`, `${dir}/pipe_copy`, { recursive: true }),
        INVALID_REQUEST,
        "fs/copy only supports regular files, directories, and symlinks",
      );
      assert.equal(await exists(`${dir}/pipe_copy`), false);
    });
  });

  Deno.test(`fs ${backend.name}: relative paths are INVALID_PARAMS`, async () => {
    await withFs(backend, async (fs, dir) => {
      const expected = (method: string, name: string, value: string): string =>
        `invalid params for ${method}: ${name}: must be an absolute path or a file:// URI, got ${
          JSON.stringify(value)
        }`;
      await assertRpcError(
        fs.readFile("a.txt"),
        INVALID_PARAMS,
        expected("fs/readFile", "path", "a.txt"),
      );
      await assertRpcError(
        fs.writeFile("./a.txt", new Uint8Array()),
        INVALID_PARAMS,
        expected("fs/writeFile", "path", "./a.txt"),
      );
      await assertRpcError(
        fs.createDirectory("d"),
        INVALID_PARAMS,
        expected("fs/createDirectory", "path", "d"),
      );
      await assertRpcError(
        fs.getMetadata(""),
        INVALID_PARAMS,
        expected("fs/getMetadata", "path", ""),
      );
      await assertRpcError(
        fs.readDirectory("."),
        INVALID_PARAMS,
        expected("fs/readDirectory", "path", "."),
      );
      await assertRpcError(fs.remove("x"), INVALID_PARAMS, expected("fs/remove", "path", "x"));
      await assertRpcError(
        fs.copy("src", `${dir}/dest`, { recursive: true }),
        INVALID_PARAMS,
        expected("fs/copy", "sourcePath", "src"),
      );
      await assertRpcError(
        fs.copy(dir, "dest", { recursive: true }),
        INVALID_PARAMS,
        expected("fs/copy", "destinationPath", "dest"),
      );
      assert.equal(await exists("dest"), false);
    });
  });

  Deno.test(`fs ${backend.name}: remove of a missing path`, async () => {
    await withFs(backend, async (fs, dir) => {
      const path = `${dir}/nope`;
      await assertRpcError(
        fs.remove(path, { force: false }),
        NOT_FOUND,
        `fs/remove ${path}: No such file or directory (os error 2)`,
      );
      await fs.remove(path); // force defaults to true
      await fs.remove(path, { force: true, recursive: false });
    });
  });

  Deno.test(`fs ${backend.name}: remove of a non-empty directory needs recursive`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.mkdir(`${dir}/full`);
      await Deno.writeTextFile(`${dir}/full/f.txt`, "f");
      await assertRpcError(fs.remove(`${dir}/full`, { recursive: false }), INTERNAL_ERROR);
      assert.ok(await exists(`${dir}/full/f.txt`));
      await Deno.mkdir(`${dir}/empty`);
      await fs.remove(`${dir}/empty`, { recursive: false });
      assert.equal(await exists(`${dir}/empty`), false);
    });
  });

  Deno.test(`fs ${backend.name}: createDirectory without recursive`, async () => {
    await withFs(backend, async (fs, dir) => {
      const path = `${dir}/missing/child`;
      await assertRpcError(
        fs.createDirectory(path, { recursive: false }),
        NOT_FOUND,
        `fs/createDirectory ${path}: No such file or directory (os error 2)`,
      );
      assert.equal(await exists(`${dir}/missing`), false);
      await fs.createDirectory(`${dir}/single`, { recursive: false });
      assert.ok((await Deno.stat(`${dir}/single`)).isDirectory);
    });
  });

  Deno.test(`fs ${backend.name}: readDirectory errors`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.writeTextFile(`${dir}/f.txt`, "f");
      await assertRpcError(fs.readDirectory(`${dir}/nope`), NOT_FOUND);
      // -32603 as the reference maps "Not a directory" (only invalid input and denied access are -32600).
      await assertRpcError(fs.readDirectory(`${dir}/f.txt`), INTERNAL_ERROR, /Not a directory/);
      assert.deepEqual(await fs.readDirectory(`${dir}/`), [
        { fileName: "f.txt", isDirectory: false, isFile: true },
      ]);
    });
  });
}

for (const backend of backends) {
  Deno.test(`fs ${backend.name}: readFile refuses devices and fifos instead of reading forever`, async () => {
    const { fs, close } = await backend.open();
    try {
      await assert.rejects(fs.readFile("/dev/zero"), (err: unknown) => {
        assert.ok(err instanceof RpcError);
        assert.equal(err.code, INVALID_REQUEST);
        assert.match(err.message, /not a regular file/);
        return true;
      });
    } finally {
      await close();
    }
  });
}

for (const backend of backends) {
  Deno.test(`fs ${backend.name}: canonicalize resolves symlinks and dots; a missing path is NOT_FOUND`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.mkdir(`${dir}/real/sub`, { recursive: true });
      await Deno.symlink(`${dir}/real`, `${dir}/link`);
      assert.equal(await fs.canonicalize(`${dir}/link/sub/../sub`), `${dir}/real/sub`);
      await assertRpcError(fs.canonicalize(`${dir}/nope`), NOT_FOUND);
    });
  });

  Deno.test(`fs ${backend.name}: walk lists files and directories breadth first, by name, within its bounds`, async () => {
    await withFs(backend, async (fs, dir) => {
      await Deno.mkdir(`${dir}/b/c`, { recursive: true });
      await Deno.writeTextFile(`${dir}/b/c/x`, "");
      await Deno.writeTextFile(`${dir}/a`, "");
      await Deno.symlink(`${dir}/a`, `${dir}/file_link`);
      await Deno.symlink(`${dir}/missing`, `${dir}/broken`);
      await mkfifo(`${dir}/fifo`);
      const options = {
        maxDepth: 10,
        maxEntries: 100,
        maxDirectories: 100,
        followDirectorySymlinks: true,
      };
      assert.deepEqual(await fs.walk(dir, options), {
        entries: [
          { path: `${dir}/a`, kind: "file" },
          { path: `${dir}/b`, kind: "directory" },
          { path: `${dir}/b/c`, kind: "directory" },
          { path: `${dir}/b/c/x`, kind: "file" },
        ],
        errors: [],
        truncated: false,
      });
      const shallow = await fs.walk(dir, { ...options, maxDepth: 0 });
      assert.deepEqual(shallow.entries.map((e) => e.path), [`${dir}/a`, `${dir}/b`]);
      assert.equal((await fs.walk(dir, { ...options, maxEntries: 1 })).truncated, true);
      assert.deepEqual(await fs.walk(`${dir}/a`, options), {
        entries: [],
        errors: [],
        truncated: false,
      });
      await assertRpcError(fs.walk(`${dir}/nope`, options), NOT_FOUND);
    });
  });

  Deno.test(`fs ${backend.name}: a file streams in and out in blocks, larger than one block`, async () => {
    await withFs(backend, async (fs, dir) => {
      // 2.5 blocks of 1 MiB, with a pattern that shows any misplaced block.
      const data = new Uint8Array(2.5 * 1024 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 20)) & 0xff;
      const writable = await fs.writeFileStream(`${dir}/big`);
      const writer = writable.getWriter();
      await writer.write(data.subarray(0, 1_500_000));
      await writer.write(data.subarray(1_500_000));
      await writer.close();
      assert.deepEqual(await Deno.readFile(`${dir}/big`), data);
      const readable = await fs.readFileStream(`${dir}/big`);
      const read = new Uint8Array(await new Response(readable).arrayBuffer());
      assert.equal(read.byteLength, data.byteLength);
      assert.deepEqual(read, data);
      // Cancelled early, the file is closed (the resource sanitizer sees it for local).
      const partial = (await fs.readFileStream(`${dir}/big`)).getReader();
      assert.ok((await partial.read()).value!.byteLength > 0);
      await partial.cancel();
      await assertRpcError(fs.readFileStream(dir), INVALID_REQUEST, /is not a file/);
      await assertRpcError(fs.readFileStream(`${dir}/nope`), NOT_FOUND);
    });
  });
}
