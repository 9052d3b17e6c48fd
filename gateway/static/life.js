// Conway's Game of Life on a canvas: a board of 80×50 cells, patterns, random fill, start/stop/step.
"use strict";
const COLS = 80, ROWS = 50, SIZE = 8;
const PATTERNS = {
  glider: [[1, 0], [2, 1], [0, 2], [1, 2], [2, 2]],
  blinker: [[0, 0], [1, 0], [2, 0]],
  rpentomino: [[1, 0], [2, 0], [0, 1], [1, 1], [1, 2]],
  pulsar: (() => {
    const cells = [];
    const arms = [2, 3, 4, 8, 9, 10];
    for (const a of arms) for (const b of [0, 5, 7, 12]) { cells.push([a, b]); cells.push([b, a]); }
    return cells;
  })(),
  gosper: [[24, 0], [22, 1], [24, 1], [12, 2], [13, 2], [20, 2], [21, 2], [34, 2], [35, 2],
    [11, 3], [15, 3], [20, 3], [21, 3], [34, 3], [35, 3], [0, 4], [1, 4], [10, 4], [16, 4],
    [20, 4], [21, 4], [0, 5], [1, 5], [10, 5], [14, 5], [16, 5], [17, 5], [22, 5], [24, 5],
    [10, 6], [16, 6], [24, 6], [11, 7], [15, 7], [12, 8], [13, 8]],
};

const canvas = document.getElementById("board");
const context = canvas.getContext("2d");
const status = document.getElementById("status");
const startButton = document.getElementById("start");
let cells = new Uint8Array(COLS * ROWS);
let generation = 0;
let timer = null;

function alive() { return cells.reduce((sum, c) => sum + c, 0); }

function draw() {
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = "#1a7f37";
  for (let y = 0; y < ROWS; y++) {
    for (let x = 0; x < COLS; x++) {
      if (cells[y * COLS + x]) context.fillRect(x * SIZE, y * SIZE, SIZE - 1, SIZE - 1);
    }
  }
  status.textContent = `Generation ${generation}, ${alive()} live cells.`;
}

function step() {
  const wrap = document.getElementById("wrap").checked;
  const next = new Uint8Array(COLS * ROWS);
  for (let y = 0; y < ROWS; y++) {
    for (let x = 0; x < COLS; x++) {
      let n = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          if (!dx && !dy) continue;
          let nx = x + dx, ny = y + dy;
          if (wrap) { nx = (nx + COLS) % COLS; ny = (ny + ROWS) % ROWS; }
          else if (nx < 0 || ny < 0 || nx >= COLS || ny >= ROWS) continue;
          n += cells[ny * COLS + nx];
        }
      }
      const here = cells[y * COLS + x];
      next[y * COLS + x] = n === 3 || (here && n === 2) ? 1 : 0;
    }
  }
  cells = next;
  generation++;
  draw();
}

function place(name) {
  const shape = PATTERNS[name];
  const width = Math.max(...shape.map(([x]) => x)) + 1;
  const height = Math.max(...shape.map(([, y]) => y)) + 1;
  const ox = Math.floor((COLS - width) / 2), oy = Math.floor((ROWS - height) / 2);
  for (const [x, y] of shape) cells[(oy + y) * COLS + ox + x] = 1;
  draw();
}

function stop() {
  clearInterval(timer);
  timer = null;
  startButton.textContent = "Start";
}

startButton.addEventListener("click", () => {
  if (timer) { stop(); return; }
  timer = setInterval(step, 100);
  startButton.textContent = "Stop";
});
document.getElementById("step").addEventListener("click", () => { stop(); step(); });
document.getElementById("place").addEventListener("click", () => place(document.getElementById("pattern").value));
document.getElementById("random").addEventListener("click", () => {
  cells = cells.map(() => (Math.random() < 0.25 ? 1 : 0));
  generation = 0;
  draw();
});
document.getElementById("clear").addEventListener("click", () => {
  stop();
  cells = new Uint8Array(COLS * ROWS);
  generation = 0;
  draw();
});
canvas.addEventListener("click", (event) => {
  const box = canvas.getBoundingClientRect();
  const x = Math.floor(((event.clientX - box.left) * canvas.width) / box.width / SIZE);
  const y = Math.floor(((event.clientY - box.top) * canvas.height) / box.height / SIZE);
  if (x >= 0 && y >= 0 && x < COLS && y < ROWS) { cells[y * COLS + x] ^= 1; draw(); }
});
draw();
