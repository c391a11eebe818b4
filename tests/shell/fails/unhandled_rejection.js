// A rejection nobody handles must make out/threader exit 1.
thread.all(threader(() => { throw new Error("nobody caught me"); }));
