// SPDX-License-Identifier: MIT
pragma solidity 0.8.26;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReceiverBase} from "./ReceiverBase.sol";

/// @notice What a gateway calls on the destination chain to deliver a message.
interface IMessageReceiver {
    /// @notice Handle a message; `value` units of the gateway's token were transferred just before.
    /// @param sourceChainId The chain the message was sent on.
    /// @param sender Who sent it there.
    /// @param payload The sender's bytes.
    /// @param value Token units released to this receiver with the message.
    function receiveMessage(uint256 sourceChainId, address sender, bytes calldata payload, uint256 value) external;
}

/// @title CrossChainGateway - messages and a token leg between chains, executed on a DON's attestation
/// @notice On the source chain, `send` locks the value, takes the sender's next nonce for that
/// destination and emits MessageSent. On the destination chain, a DON report attesting that event
/// (source chain id, source gateway, tx hash, log index, sender, destination chain id, nonce,
/// receiver, value, out-of-order flag, receiver gas limit, payload) executes it: only on the
/// chain it was sent to, exactly once, in nonce order per (source chain, sender) unless it was
/// sent out of order (those carry nonce 0 and take no place in the order, as in CCIP), releasing
/// the value to the receiver and calling it with exactly its gas limit. A report with too little
/// gas for that reverts (nothing recorded, retryable), so a submitter cannot turn a good message
/// into a failed one; a receiver that fails within its gas limit is recorded as Failed (the nonce
/// still advances, so one bad message cannot block a sender) and anyone may re-execute it.
/// Value is rate-limited twice by token buckets: outbound per destination, inbound per source.
contract CrossChainGateway is ReceiverBase, ReentrancyGuard, Ownable2Step {
    using SafeERC20 for IERC20;

    /// @notice A message as attested by the DON.
    struct Message {
        uint256 sourceChainId;
        address sourceGateway;
        bytes32 sourceTxHash;
        uint256 logIndex;
        address sender;
        uint256 destChainId;
        uint64 nonce;
        address receiver;
        uint256 value;
        bool outOfOrder;
        uint32 gasLimit;
        bytes payload;
    }

    /// @notice Where a message stands on the destination chain.
    enum State {
        Unknown,
        Executed,
        Failed
    }

    /// @notice A token bucket: up to `capacity` units, refilled at `rate` units per second.
    struct Bucket {
        uint128 capacity;
        uint128 rate;
        uint128 tokens;
        uint64 updatedAt;
    }

    /// @notice A zero receiver, or a send to this very chain.
    error InvalidDestination(uint256 destChainId, address receiver);
    /// @notice No bucket is configured for the destination: sending there is not enabled.
    error DestinationDisabled(uint256 destChainId);
    /// @notice The send would take more value than the destination's bucket holds.
    error RateLimited(uint256 destChainId, uint256 requested, uint256 available);
    /// @notice The report names a source gateway that is not the one configured for its chain.
    error UnknownSource(uint256 sourceChainId, address sourceGateway);
    /// @notice The message was already executed or recorded as failed.
    error AlreadyProcessed(bytes32 messageId, State state);
    /// @notice An ordered message arrived before its predecessors.
    error OutOfOrder(uint256 sourceChainId, address sender, uint64 expected, uint64 received);
    /// @notice Manual execution of a message that is not recorded as failed.
    error NotFailed(bytes32 messageId, State state);
    /// @notice Only the gateway itself may call this.
    error OnlySelf(address caller);
    /// @notice A bucket whose capacity is zero with a non-zero rate.
    error InvalidBucket(uint256 capacity, uint256 rate);
    /// @notice The message was sent to another chain.
    error WrongDestination(uint256 destChainId, uint256 expected);
    /// @notice The report carries too little gas to give the receiver its full gas limit; retry with more.
    error InsufficientGasForDelivery(uint256 needed, uint256 available);
    /// @notice The message would release more value than the source chain's inbound bucket holds.
    error InboundRateLimited(uint256 sourceChainId, uint256 requested, uint256 available);
    /// @notice A receiver gas limit above MAX_GAS_LIMIT.
    error GasLimitTooHigh(uint32 gasLimit, uint32 maximum);
    /// @notice Fewer tokens arrived than the value sent (a fee-on-transfer token).
    error TransferShortfall(uint256 expected, uint256 received);

    /// @notice Emitted on the source chain for every message.
    event MessageSent(
        uint256 indexed destChainId,
        address indexed sender,
        uint64 indexed nonce,
        address receiver,
        uint256 value,
        bool outOfOrder,
        uint32 gasLimit,
        bytes payload
    );
    /// @notice Emitted on the destination chain when a message executed.
    event MessageExecuted(
        bytes32 indexed messageId, uint256 indexed sourceChainId, address indexed sender, uint64 nonce
    );
    /// @notice Emitted on the destination chain when a message's execution failed (re-executable).
    event MessageFailed(bytes32 indexed messageId, uint256 indexed sourceChainId, address indexed sender, bytes reason);
    /// @notice Emitted when the gateway trusted for a source chain is set.
    event SourceSet(uint256 indexed sourceChainId, address gateway);
    /// @notice Emitted when a destination's rate limit is set.
    event BucketSet(uint256 indexed destChainId, uint256 capacity, uint256 rate);
    /// @notice Emitted when a source chain's inbound rate limit is set.
    event InboundBucketSet(uint256 indexed sourceChainId, uint256 capacity, uint256 rate);

    /// @notice The contract's type and version.
    string public constant typeAndVersion = "vouch CrossChainGateway 2.0.0";
    /// @notice The receiver gas limit of send and sendOutOfOrder.
    uint32 public constant DEFAULT_GAS_LIMIT = 200_000;
    /// @notice The largest receiver gas limit a message may ask for.
    uint32 public constant MAX_GAS_LIMIT = 5_000_000;
    /// @dev Gas for deliver's own work besides the receiver call: the token transfer and the call's overhead.
    uint256 internal constant DELIVER_GAS = 80_000;
    /// @dev Gas kept back to record a failure after the receiver call.
    uint256 internal constant GAS_RESERVE = 30_000;

    IERC20 internal immutable i_token;
    mapping(uint256 destChainId => mapping(address sender => uint64 nonce)) internal s_sentNonces;
    mapping(uint256 destChainId => Bucket bucket) internal s_buckets;
    mapping(uint256 sourceChainId => Bucket bucket) internal s_inboundBuckets;
    mapping(uint256 sourceChainId => address gateway) internal s_sources;
    mapping(uint256 sourceChainId => mapping(address sender => uint64 nonce)) internal s_executedNonces;
    mapping(bytes32 messageId => State state) internal s_states;

    /// @param valueToken The token of the value leg (locked on the source, released on the destination).
    /// @param forwarder The only address allowed to deliver reports.
    /// @param workflowOwner The workflow owner reports must name.
    /// @param workflowId The workflow id reports must name.
    /// @param freshnessWindow How old (seconds) a report may be when it arrives.
    /// @param donId The only DON whose reports are accepted (0: any DON of the forwarder).
    /// @param minConfigVersion The lowest accepted config version of that DON.
    constructor(
        IERC20 valueToken,
        address forwarder,
        address workflowOwner,
        bytes32 workflowId,
        uint32 freshnessWindow,
        uint32 donId,
        uint32 minConfigVersion
    ) ReceiverBase(forwarder, workflowOwner, workflowId, freshnessWindow, donId, minConfigVersion) Ownable(msg.sender) {
        i_token = valueToken;
    }

    // ================================================================ source chain

    /// @notice Send `payload` and `value` units of the token to `receiver` on `destChainId`, in order.
    /// @param destChainId The destination chain.
    /// @param receiver The IMessageReceiver there.
    /// @param payload Bytes for the receiver.
    /// @param value Token units locked here and released there (pulled from the sender).
    /// @return nonce The sender's nonce for this destination (1, 2, 3, ...).
    function send(uint256 destChainId, address receiver, bytes calldata payload, uint256 value)
        external
        nonReentrant
        returns (uint64 nonce)
    {
        return _send(destChainId, receiver, payload, value, false, DEFAULT_GAS_LIMIT);
    }

    /// @notice As send, but the destination may execute this message before its predecessors.
    /// @param destChainId The destination chain.
    /// @param receiver The IMessageReceiver there.
    /// @param payload Bytes for the receiver.
    /// @param value Token units locked here and released there.
    /// @return nonce 0: a message sent out of order takes no place in the sender's order.
    function sendOutOfOrder(uint256 destChainId, address receiver, bytes calldata payload, uint256 value)
        external
        nonReentrant
        returns (uint64 nonce)
    {
        return _send(destChainId, receiver, payload, value, true, DEFAULT_GAS_LIMIT);
    }

    /// @notice As send or sendOutOfOrder, with the gas the receiver's call gets on the destination.
    /// @param destChainId The destination chain.
    /// @param receiver The IMessageReceiver there.
    /// @param payload Bytes for the receiver.
    /// @param value Token units locked here and released there.
    /// @param gasLimit Gas for receiveMessage there (at most MAX_GAS_LIMIT).
    /// @param outOfOrder Whether the destination may execute it before its predecessors.
    /// @return nonce The sender's nonce for this destination; 0 for an out-of-order message.
    function sendWithGasLimit(
        uint256 destChainId,
        address receiver,
        bytes calldata payload,
        uint256 value,
        uint32 gasLimit,
        bool outOfOrder
    ) external nonReentrant returns (uint64 nonce) {
        if (gasLimit > MAX_GAS_LIMIT) revert GasLimitTooHigh(gasLimit, MAX_GAS_LIMIT);
        return _send(destChainId, receiver, payload, value, outOfOrder, gasLimit);
    }

    function _send(
        uint256 destChainId,
        address receiver,
        bytes calldata payload,
        uint256 value,
        bool outOfOrder,
        uint32 gasLimit
    ) internal returns (uint64 nonce) {
        if (receiver == address(0) || destChainId == block.chainid) {
            revert InvalidDestination(destChainId, receiver);
        }
        Bucket storage bucket = s_buckets[destChainId];
        // slither-disable-next-line incorrect-equality (a configured capacity, not a balance)
        if (bucket.capacity == 0) revert DestinationDisabled(destChainId);
        uint256 available = _take(bucket, value);
        if (value > available) revert RateLimited(destChainId, value, available);
        // Ordered messages are numbered per (destination, sender): each destination checks the
        // order of its own lane. Out-of-order messages carry 0 and leave the order alone.
        if (!outOfOrder) nonce = ++s_sentNonces[destChainId][msg.sender];
        emit MessageSent(destChainId, msg.sender, nonce, receiver, value, outOfOrder, gasLimit, payload);
        if (value > 0) {
            uint256 before = i_token.balanceOf(address(this));
            i_token.safeTransferFrom(msg.sender, address(this), value);
            uint256 received = i_token.balanceOf(address(this)) - before;
            if (received != value) revert TransferShortfall(value, received);
        }
    }

    /// @dev Refill the bucket for the time passed, then take `value` from it if it holds that
    /// much; the units it held (after the refill) either way, for the caller's error.
    function _take(Bucket storage bucket, uint256 value) internal returns (uint256 available) {
        Bucket memory b = bucket;
        available = _available(b);
        if (value > available) return available;
        // forge-lint: disable-next-line(unsafe-typecast)
        b.tokens = uint128(available - value); // <= capacity, a uint128
        b.updatedAt = uint64(block.timestamp);
        bucket.tokens = b.tokens;
        bucket.updatedAt = b.updatedAt;
    }

    function _available(Bucket memory bucket) internal view returns (uint256) {
        uint256 refilled = uint256(bucket.tokens) + (block.timestamp - bucket.updatedAt) * uint256(bucket.rate);
        return refilled < bucket.capacity ? refilled : bucket.capacity;
    }

    // ================================================================ destination chain

    /// @inheritdoc ReceiverBase
    /// @dev payload = abi.encode(Message).
    function _processReport(bytes32, bytes2, bytes32, bytes memory payload) internal override nonReentrant {
        Message memory message = abi.decode(payload, (Message));
        if (message.destChainId != block.chainid) revert WrongDestination(message.destChainId, block.chainid);
        bytes32 messageId = getMessageId(message);
        if (s_sources[message.sourceChainId] != message.sourceGateway || message.sourceGateway == address(0)) {
            revert UnknownSource(message.sourceChainId, message.sourceGateway);
        }
        State state = s_states[messageId];
        if (state != State.Unknown) revert AlreadyProcessed(messageId, state);
        if (message.value > 0) {
            uint256 available = _take(s_inboundBuckets[message.sourceChainId], message.value);
            if (message.value > available) revert InboundRateLimited(message.sourceChainId, message.value, available);
        }
        if (!message.outOfOrder) {
            uint64 expected = s_executedNonces[message.sourceChainId][message.sender] + 1;
            if (message.nonce != expected) {
                revert OutOfOrder(message.sourceChainId, message.sender, expected, message.nonce);
            }
            s_executedNonces[message.sourceChainId][message.sender] = expected;
        }
        _execute(messageId, message);
    }

    /// @notice Execute a message whose execution failed before (anyone may call).
    /// @param message The message exactly as attested.
    function executeFailed(Message calldata message) external nonReentrant {
        bytes32 messageId = getMessageId(message);
        State state = s_states[messageId];
        if (state != State.Failed) revert NotFailed(messageId, state);
        _execute(messageId, message);
    }

    /// @dev Release and call in one self-call, so a failure undoes both and is only recorded. The
    /// state is written before the call; a receiver reentering to run the message again meets the
    /// reentrancy guard (onReport, executeFailed) or AlreadyProcessed.
    /// The self-call gets exactly DELIVER_GAS + the message's gas limit, whatever the submitter
    /// sent (as CCIP's exact-gas call): with less gas left than that (and 1/64 of it the EVM keeps
    /// back, and the reserve to record a failure) the whole report reverts, so the outcome of a
    /// delivery is the receiver's doing, never the submitter's.
    // slither-disable-next-line reentrancy-benign,reentrancy-events (the call is to this gateway; see above)
    function _execute(bytes32 messageId, Message memory message) internal {
        s_states[messageId] = State.Executed;
        uint256 callGas = DELIVER_GAS + message.gasLimit;
        uint256 needed = callGas + callGas / 63 + GAS_RESERVE;
        if (gasleft() < needed) revert InsufficientGasForDelivery(needed, gasleft());
        try this.deliver{gas: callGas}(message) {
            emit MessageExecuted(messageId, message.sourceChainId, message.sender, message.nonce);
        } catch (bytes memory reason) {
            s_states[messageId] = State.Failed;
            emit MessageFailed(messageId, message.sourceChainId, message.sender, reason);
        }
    }

    /// @notice Release the value and call the receiver; only the gateway itself may call this.
    /// @param message The message being executed.
    function deliver(Message calldata message) external {
        if (msg.sender != address(this)) revert OnlySelf(msg.sender);
        if (message.value > 0) i_token.safeTransfer(message.receiver, message.value);
        IMessageReceiver(message.receiver).receiveMessage{gas: message.gasLimit}(
            message.sourceChainId, message.sender, message.payload, message.value
        );
    }

    // ================================================================ admin and views

    /// @notice Trust `gateway` as the gateway of `sourceChainId` (zero: trust none).
    /// @param sourceChainId The source chain.
    /// @param gateway Its gateway.
    function setSource(uint256 sourceChainId, address gateway) external onlyOwner {
        s_sources[sourceChainId] = gateway;
        emit SourceSet(sourceChainId, gateway);
    }

    /// @notice Rate-limit the value sent to `destChainId` (capacity 0 disables the destination).
    /// @param destChainId The destination chain.
    /// @param capacity The most value in flight at once.
    /// @param rate Value units the bucket regains per second.
    function setBucket(uint256 destChainId, uint128 capacity, uint128 rate) external onlyOwner {
        _setBucket(s_buckets[destChainId], capacity, rate);
        emit BucketSet(destChainId, capacity, rate);
    }

    /// @notice Rate-limit the value released for messages from `sourceChainId` (capacity 0: no
    /// value may arrive from there; messages without value still do).
    /// @param sourceChainId The source chain.
    /// @param capacity The most value released at once.
    /// @param rate Value units the bucket regains per second.
    function setInboundBucket(uint256 sourceChainId, uint128 capacity, uint128 rate) external onlyOwner {
        _setBucket(s_inboundBuckets[sourceChainId], capacity, rate);
        emit InboundBucketSet(sourceChainId, capacity, rate);
    }

    function _setBucket(Bucket storage bucket, uint128 capacity, uint128 rate) internal {
        if (capacity == 0 && rate != 0) revert InvalidBucket(capacity, rate);
        Bucket memory b = bucket;
        uint256 available = b.capacity == 0 ? capacity : _available(b);
        // forge-lint: disable-next-line(unsafe-typecast)
        uint128 tokens = uint128(available < capacity ? available : capacity); // <= capacity
        bucket.capacity = capacity;
        bucket.rate = rate;
        bucket.tokens = tokens;
        bucket.updatedAt = uint64(block.timestamp);
    }

    /// @notice A destination's bucket and the value it would allow now.
    /// @param destChainId The destination chain.
    function getBucket(uint256 destChainId) external view returns (Bucket memory bucket, uint256 available) {
        bucket = s_buckets[destChainId];
        // slither-disable-next-line incorrect-equality (a configured capacity, not a balance)
        available = bucket.capacity == 0 ? 0 : _available(bucket);
    }

    /// @notice A source chain's inbound bucket and the value it would release now.
    /// @param sourceChainId The source chain.
    function getInboundBucket(uint256 sourceChainId) external view returns (Bucket memory bucket, uint256 available) {
        bucket = s_inboundBuckets[sourceChainId];
        // slither-disable-next-line incorrect-equality (a configured capacity, not a balance)
        available = bucket.capacity == 0 ? 0 : _available(bucket);
    }

    /// @notice The last ordered nonce `sender` used here for `destChainId`.
    /// @param destChainId The destination chain.
    /// @param sender The sender.
    function getSentNonce(uint256 destChainId, address sender) external view returns (uint64) {
        return s_sentNonces[destChainId][sender];
    }

    /// @notice The last ordered nonce executed here for (sourceChainId, sender).
    /// @param sourceChainId The source chain.
    /// @param sender The sender.
    function getExecutedNonce(uint256 sourceChainId, address sender) external view returns (uint64) {
        return s_executedNonces[sourceChainId][sender];
    }

    /// @notice Where a message stands here.
    /// @param messageId The message's id (getMessageId).
    function getState(bytes32 messageId) external view returns (State) {
        return s_states[messageId];
    }

    /// @notice The gateway trusted for a source chain.
    /// @param sourceChainId The source chain.
    function getSource(uint256 sourceChainId) external view returns (address) {
        return s_sources[sourceChainId];
    }

    /// @notice The token of the value leg.
    function token() external view returns (IERC20) {
        return i_token;
    }

    /// @notice A message's id: every attested field in order (the destination chain among them),
    /// the payload by its hash.
    /// @param message The message.
    function getMessageId(Message memory message) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                message.sourceChainId,
                message.sourceGateway,
                message.sourceTxHash,
                message.logIndex,
                message.sender,
                message.destChainId,
                message.nonce,
                message.receiver,
                message.value,
                message.outOfOrder,
                message.gasLimit,
                keccak256(message.payload)
            )
        );
    }
}
